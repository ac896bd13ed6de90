/**
 * Calls that queue on a busy instance go into the isolate together (one round trip per
 * group, bridge.ts). What must not change: each call gets its own result or error, calls
 * still run one at a time, every platform message is served for the call that sent it,
 * each call has its own CPU and wall budget from when it starts, a reply for a call that
 * ended is dropped, and a breach ends the instance and is counted once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { OneShotCaller } from '../../src/sandbox/one-shot.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { appBundle, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf({
  echo: (args: unknown) => args,
  fail(args: { i: number }) {
    throw new Error(`call ${args.i} failed`);
  },
  async roundTrip(args: { i: number }) {
    const g = globalThis as any;
    g.running = (g.running ?? 0) + 1;
    const overlapped = g.running > 1;
    await fc.storage.set('rt:' + args.i, { i: args.i });
    const back = await fc.storage.get('rt:' + args.i);
    g.running -= 1;
    return { i: back.i, overlapped };
  },
  burn(args: { ms: number }) {
    const end = Date.now() + args.ms;
    while (Date.now() < end);
    return 'burnt';
  },
  spin() {
    for (;;);
  },
  async sleep(args: { ms: number }) {
    await new Promise((resolve) => setTimeout(resolve, args.ms));
    return 'slept';
  },
  fireAndForget() {
    const g = globalThis as any;
    // A write of 1,000 synced keys: its reply comes well after the call has returned.
    const ops = Array.from({ length: 1000 }, (_, k) => ({ op: 'set', key: 'ff:' + k, value: 'v'.repeat(1000) }));
    void fc.storage.batch(ops).then(() => {
      g.lateContinuation = true;
    });
    return 'returned';
  },
  lateContinuation: () => (globalThis as any).lateContinuation === true,
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([
    { id: 'batcher', limits: { cpu_ms: 300, wall_ms: 400, instances: 20, concurrency: 64, breaches_per_min: 100_000 } },
    // burst 3, refilled at 1 a minute: four breaches in a row are refused, one is not
    { id: 'once', limits: { cpu_ms: 100, wall_ms: 1000, instances: 20, breaches_per_min: 1 } },
  ]);
});
afterAll(() => p.dispose());

async function launched(tenantId = 'batcher') {
  const tenant = p.tenants.get(tenantId);
  const { info } = await p.host.launch(tenant, appBundle('batching', app), null);
  const call = (method: string, args: unknown = null) => p.host.call(tenant, null, info.id, method, JSON.stringify(args)).then(JSON.parse);
  return { id: info.id, call, live: () => p.host.isLive(info.id) };
}

const codeOf = (settled: PromiseSettledResult<unknown>) =>
  settled.status === 'rejected' ? (settled.reason as IsohostError).code : 'ok';

describe('calls queued on one instance', () => {
  it('should give each call its own result, in order', async () => {
    const i = await launched();
    const results = await Promise.all(Array.from({ length: 50 }, (_, k) => i.call('echo', { k, text: 'x'.repeat(k) })));
    expect(results).toEqual(Array.from({ length: 50 }, (_, k) => ({ k, text: 'x'.repeat(k) })));
  });

  it('should keep errors to the call that threw', async () => {
    const i = await launched();
    const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, k) => i.call(k % 3 === 1 ? 'fail' : 'echo', { i: k })));
    settled.forEach((s, k) => {
      if (k % 3 === 1) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toMatchObject({ code: 'miniapp_error', message: expect.stringContaining(`call ${k} failed`) });
      } else {
        expect(s).toEqual({ status: 'fulfilled', value: { i: k } });
      }
    });
    expect(i.live()).toBe(true);
  });

  it('should run them one at a time and serve each platform op for the call that sent it', async () => {
    const i = await launched();
    const results = await Promise.all(Array.from({ length: 20 }, (_, k) => i.call('roundTrip', { i: k })));
    expect(results).toEqual(Array.from({ length: 20 }, (_, k) => ({ i: k, overlapped: false })));
  });

  it('should give each call its own CPU budget from when it starts', async () => {
    const i = await launched();
    // 5 × 150 ms of CPU, queued together: 750 ms in all, each call within its 300 ms.
    const results = await Promise.all(Array.from({ length: 5 }, () => i.call('burn', { ms: 150 })));
    expect(results).toEqual(Array(5).fill('burnt'));
  });

  it('should start each call\'s wall budget when it starts, not while it waits', async () => {
    const i = await launched();
    // 4 × 250 ms asleep, queued together: 1 s in all, each call within its 400 ms.
    const results = await Promise.all(Array.from({ length: 4 }, () => i.call('sleep', { ms: 250 })));
    expect(results).toEqual(Array(4).fill('slept'));
  });

  it('should drop the reply to an op whose call has ended, even while a later call runs', async () => {
    const i = await launched();
    const [first, second] = await Promise.all([i.call('fireAndForget'), i.call('sleep', { ms: 200 })]);
    expect([first, second]).toEqual(['returned', 'slept']);
    // The write itself was done (the op was served for the call that sent it) ...
    expect(await p.tenants.get('batcher').store.app('batching').get('ff:999')).toBe(JSON.stringify('v'.repeat(1000)));
    // ... but its reply reached no guest code: the call that was waiting for it had ended.
    expect(await i.call('lateContinuation')).toBe(false);
  });
});

describe('a breach inside a group of queued calls', () => {
  it('should answer the calls before it, end the ones from it on with timeout, and leave other instances running', async () => {
    const i = await launched();
    const other = await launched();
    const settled = await Promise.allSettled([i.call('echo', 1), i.call('spin'), i.call('echo', 3), i.call('echo', 4)]);
    expect(settled.map(codeOf)).toEqual(['ok', 'timeout', 'timeout', 'timeout']);
    expect(i.live()).toBe(false);
    await expect(i.call('echo', 5)).rejects.toMatchObject({ code: 'not_found' });
    expect(await other.call('echo', 'still here')).toBe('still here');
  });

  it('should count against the tenant\'s breach budget once, however many calls it ended', async () => {
    const i = await launched('once');
    const settled = await Promise.allSettled([i.call('spin'), i.call('echo', 2), i.call('echo', 3), i.call('echo', 4)]);
    expect(settled.map(codeOf)).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    // Counted four times, the burst of 3 would be gone and this launch refused.
    const next = await launched('once');
    expect(await next.call('echo', 'ok')).toBe('ok');
  });
});

describe('one-shot calls', () => {
  it('should pack fast calls onto one instance and spread slow ones', async () => {
    const tenant = p.tenants.get('batcher');
    // A wide wait budget, so a slow test machine's first call cannot look slow: ~1 ms
    // echoes fit 16 deep under 50 ms, 150 ms sleeps do not fit even one deep.
    const oneShot = new OneShotCaller(p.host, { waitBudgetMs: 50 });
    const user = { sub: 'packer', claims: {} };
    const fast = appBundle('fast', app);
    const before = p.host.liveCount;
    // Calls one after another measure the key's time per call (the first, on a fresh
    // isolate, is the slowest); then a burst queues on the one instance.
    for (let k = 0; k < 12; k++) expect(await oneShot.call(tenant, fast, user, 'echo', String(k))).toBe(String(k));
    const results = await Promise.all(Array.from({ length: 16 }, (_, k) => oneShot.call(tenant, fast, user, 'echo', String(k))));
    expect(results).toEqual(Array.from({ length: 16 }, (_, k) => String(k)));
    expect(p.host.liveCount - before).toBe(1);

    // 150 ms calls are over the wait budget: four at once go to four instances.
    const slow = appBundle('slow', app + '\n// slow');
    await oneShot.call(tenant, slow, user, 'sleep', '{"ms":150}');
    const slept = await Promise.all(Array.from({ length: 4 }, () => oneShot.call(tenant, slow, user, 'sleep', '{"ms":150}')));
    expect(slept).toEqual(Array(4).fill('"slept"'));
    expect(p.host.liveCount - before).toBe(1 + 4);
  });

  it('should start at most four instances for a burst on a new key, the rest waiting for those launches', async () => {
    // A launch is asynchronous (the bundle's top-level code runs on the isolate's thread):
    // a burst that arrives while the first instances launch must not start one each.
    const tenant = p.tenants.get('batcher');
    const oneShot = new OneShotCaller(p.host);
    const user = { sub: 'burst', claims: {} };
    const burst = appBundle('burst', app + '\n// burst');
    const before = p.host.liveCount;
    const results = await Promise.all(Array.from({ length: 32 }, (_, k) => oneShot.call(tenant, burst, user, 'echo', String(k))));
    expect(results).toEqual(Array.from({ length: 32 }, (_, k) => String(k)));
    expect(p.host.liveCount - before).toBeLessThanOrEqual(4);
  });
});
