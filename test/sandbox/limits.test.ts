/**
 * THREATS B10–B16: each runaway ends with its coded error, the isolate is disposed
 * (never reused), and the next instance of the same tenant works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';

// The isolate's global (test bodies are stringified into bundles; see helpers/bundle.ts).
declare const fc: any;
import { appBundle, callOnce, startTestPlatform } from '../helpers/platform.ts';
import { IsohostError } from '../../src/errors.ts';

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([
    // breaches on purpose, test after test: a breach budget that never runs out
    { id: 'runaway', isolation: 'schema', limits: { memory_mb: 32, cpu_ms: 200, wall_ms: 1500, instances: 5, breaches_per_min: 100_000 } },
    { id: 'neighbour', isolation: 'schema' },
    { id: 'patient', isolation: 'schema', limits: { cpu_ms: 10_000, wall_ms: 20_000 } },
    { id: 'repeat-offender', isolation: 'schema', limits: { cpu_ms: 50, breaches_per_min: 1 } },
  ]);
});
afterAll(() => p.dispose());

const app = bundleOf({
  ok: () => 'ok',
  spin() {
    for (;;);
  },
  async spinAfterAwait() {
    await fc.storage.get('k');
    for (;;);
  },
  async spinInThen() {
    return Promise.resolve().then(() => {
      for (;;);
    });
  },
  async hang() {
    await new Promise(() => {});
  },
  async awaitLoop() {
    for (;;) await fc.storage.get('k');
  },
  arrayBomb() {
    const a: unknown[] = [];
    for (;;) a.push({ x: [1, 2, 3] });
  },
  stringBomb() {
    return [...'.'.repeat(1e9)].length;
  },
  fillBomb() {
    return new Array(6e7).fill(0).length;
  },
  bufferBomb() {
    const bufs: ArrayBuffer[] = [];
    for (;;) bufs.push(new ArrayBuffer(1024 * 1024));
  },
  timerStorm() {
    for (let i = 0; i < 100_000; i++) setTimeout(() => {}, 10);
  },
  async unawaited() {
    for (let i = 0; i < 1_000_000; i++) fc.storage.set('k' + i, i);
    return 'returned';
  },
  async unawaitedCount() {
    let rejected = 0;
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 2000; i++) ps.push(fc.storage.get('k' + i).catch((e: { code: string }) => (e.code === 'resource_exhausted' ? rejected++ : 0)));
    await Promise.all(ps);
    return rejected;
  },
});

async function expectCode(method: string, codes: string[]) {
  const err = await callOnce(p, 'runaway', 'runaway-app', app, method).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IsohostError);
  expect(codes).toContain((err as IsohostError).code);
  // the next instance of the same tenant works, and so does the neighbour
  expect(await callOnce(p, 'runaway', 'runaway-app', app, 'ok')).toBe('ok');
  expect(await callOnce(p, 'neighbour', 'runaway-app', app, 'ok')).toBe('ok');
}

describe('limits', () => {
  it('should end for(;;) with timeout', () => expectCode('spin', ['timeout']));
  it('should end a loop after an await with timeout (isolated-vm #518)', () => expectCode('spinAfterAwait', ['timeout']));
  it('should end a loop inside .then with timeout', () => expectCode('spinInThen', ['timeout']));
  it('should end a never-resolving promise at the wall limit', () => expectCode('hang', ['timeout']));
  it('should end an endless await loop of storage calls', () => expectCode('awaitLoop', ['timeout']));
  it('should end an array flood', () => expectCode('arrayBomb', ['resource_exhausted', 'timeout']));
  it('should end [...".".repeat(1e9)] (isolated-vm #107)', () => expectCode('stringBomb', ['resource_exhausted', 'timeout', 'miniapp_error']));
  it('should end Array(6e7).fill() (isolated-vm #186)', () => expectCode('fillBomb', ['resource_exhausted', 'timeout', 'miniapp_error']));
  it('should end an ArrayBuffer flood', () => expectCode('bufferBomb', ['resource_exhausted', 'timeout', 'miniapp_error']));
  // Under CPU contention the storm can hit the CPU limit first; both end it with a code.
  it('should end a timer storm with a coded limit error', () => expectCode('timerStorm', ['resource_exhausted', 'timeout']));
  it('should cap pending timers at 1000 with resource_exhausted', async () => {
    const err = await callOnce(p, 'patient', 'runaway-app', app, 'timerStorm').catch((e: IsohostError) => e);
    expect(err).toMatchObject({ code: 'resource_exhausted' });
    expect(String((err as IsohostError).message)).toContain('1000');
  });
  it('should survive a million un-awaited storage calls', async () => {
    const r = await callOnce(p, 'runaway', 'runaway-app', app, 'unawaited').then(
      (v) => v,
      (e: IsohostError) => e.code,
    );
    expect(['returned', 'timeout', 'resource_exhausted']).toContain(r);
    expect(await callOnce(p, 'runaway', 'runaway-app', app, 'ok')).toBe('ok');
  });
  it('should reject past 256 in-flight operations at once, in the guest', async () => {
    // on the patient tenant: this pins the in-flight cap, not the CPU limit
    expect(await callOnce(p, 'patient', 'runaway-app', app, 'unawaitedCount')).toBe(2000 - 256);
  });

  it('should never reuse a disposed isolate: the instance is gone after a breach', async () => {
    const tenant = p.tenants.get('runaway');
    const { info } = await p.host.launch(tenant, appBundle('runaway-app', app), null);
    await expect(p.host.call(tenant, null, info.id, 'spin', 'null')).rejects.toMatchObject({ code: 'timeout' });
    await expect(p.host.call(tenant, null, info.id, 'ok', 'null')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('should enforce the tenant instance cap with resource_exhausted', async () => {
    const tenant = p.tenants.get('runaway');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await p.host.launch(tenant, appBundle('runaway-app', app), null)).info.id);
    await expect(p.host.launch(tenant, appBundle('runaway-app', app), null)).rejects.toMatchObject({ code: 'resource_exhausted' });
    for (const id of ids) p.host.dispose(tenant, null, id);
    expect(await callOnce(p, 'runaway', 'runaway-app', app, 'ok')).toBe('ok');
  });

  it('should refuse a tenant that keeps breaching its limits, and only that tenant', async () => {
    // a burst of 3 breaches, then the budget (1 a minute) is spent
    for (let i = 0; i < 3; i++) await expect(callOnce(p, 'repeat-offender', 'runaway-app', app, 'spin')).rejects.toMatchObject({ code: 'timeout' });
    const err = await callOnce(p, 'repeat-offender', 'runaway-app', app, 'ok').catch((e: IsohostError) => e);
    expect(err).toMatchObject({ code: 'resource_exhausted' });
    expect(String((err as IsohostError).message)).toMatch(/broke its limits/);
    expect(await callOnce(p, 'neighbour', 'runaway-app', app, 'ok')).toBe('ok');
  });
});
