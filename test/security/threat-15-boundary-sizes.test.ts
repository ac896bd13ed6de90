/**
 * THREATS B15 (and B14's fetch flood): boundary sizes are refused before anything is
 * copied to the host, and the host's heap stays bounded.
 *
 * Regressions, each fixed where the size is first known:
 * - a 10 KB HTTP body nested 5,000 deep made the call route answer 500 `internal` (the
 *   host re-serialises the parsed args, and JSON.stringify recurses): now 400;
 * - a million-op fc.storage.batch was serialised in full by the prelude before the host
 *   counted it: now refused by its length first;
 * - a 20 MB list prefix or URL crossed into the host's heap before the bridge's 16 MiB
 *   message check: the prelude now refuses any message over that size before posting;
 * - a 500 MB string value was JSON-serialised (seconds) before its size was checked.
 *
 * Depth itself is not limited: no host code recurses on guest JSON (V8's JSON.parse is
 * iterative; the host stores and returns values as text), so a 10,000-deep value is
 * stored and read back, and a 10,000-deep log field is dropped, without harm.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBinding } from '../../src/bindings/fetch/index.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, startTestServer, type TestServer } from '../helpers/http-server.ts';
import { startTestProxy, type TestProxy } from '../helpers/egress-fixtures.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf({
  async attempt(which: string) {
    const MB = 1024 * 1024;
    const nest = (depth: number) => {
      let v: unknown = 1;
      for (let i = 0; i < depth; i++) v = [v];
      return v;
    };
    const cases: Record<string, () => Promise<unknown>> = {
      value500MB: () => fc.storage.set('k', 'x'.repeat(500 * MB)),
      sharedValue20MB: () => fc.storage.set('k', new Array(20).fill('y'.repeat(MB))),
      batchMillion: () => fc.storage.batch(Array.from({ length: 1_000_000 }, (_, i) => ({ op: 'delete', key: 'k' + i }))),
      prefix20MB: () => fc.storage.list({ prefix: 'p'.repeat(20 * MB) }),
      cursor20MB: () => fc.storage.list({ cursor: 'c'.repeat(20 * MB) }),
      url20MB: () => fetch('http://x.test/' + 'u'.repeat(20 * MB)),
      header20MB: () => fetch('http://x.test/', { headers: { 'x-big': 'h'.repeat(20 * MB) } }),
      deepValue: async () => {
        await fc.storage.set('deep', nest(10_000));
        let v: any = await fc.storage.get('deep');
        let depth = 0;
        while (Array.isArray(v)) (v = v[0]), depth++;
        return depth;
      },
      deepLog: async () => {
        fc.log.info('deep', { v: nest(10_000) });
        return 'logged';
      },
    };
    const t0 = Date.now();
    try {
      return { ok: await cases[which]!(), ms: Date.now() - t0 };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: String(e.message).slice(0, 200), ms: Date.now() - t0 };
    }
  },
  async fetchFlood(n: number) {
    let refused = 0;
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      all.push(fc.fetch('http://flood.test/').then(() => 0, (e: any) => (e.code === 'resource_exhausted' ? refused++ : 0)));
    }
    await Promise.all(all);
    return refused;
  },
  deepResult() {
    let v: unknown = 1;
    for (let i = 0; i < 10_000; i++) v = [v];
    return v;
  },
  echo(args: unknown) {
    return args === null ? null : 'received';
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
let proxy: TestProxy;
beforeAll(async () => {
  proxy = await startTestProxy({ sizes: { rules: [] } });
  p = await startTestPlatform([{ id: 'sizes', namespace: 'ns-sizes', limits: { memory_mb: 256, cpu_ms: 2000, wall_ms: 10_000, fetch_per_call: 10_000 } }], {
    fetchBinding: (tenant) => fetchBinding({ proxyUrl: proxy.proxy.url, credentialKey: proxy.key, tenantId: tenant.id, limits: tenant.limits, logger: pino({ level: 'silent' }) }),
  });
});
afterAll(async () => {
  await p?.dispose();
  await proxy?.close();
});

async function attempt(which: string) {
  const heap = process.memoryUsage().heapUsed;
  const r = await callOnce(p, 'sizes', 'b15', app, 'attempt', which);
  return { ...r, hostHeapGrowthMB: (process.memoryUsage().heapUsed - heap) / 1048576 };
}

describe('oversized payloads from guest code', () => {
  it.each([
    ['value500MB', 'payload_too_large', /1 MiB/],
    ['sharedValue20MB', 'payload_too_large', /1 MiB/],
    ['batchMillion', 'invalid_request', /1000000 ops; the limit is 1000/],
    ['prefix20MB', 'payload_too_large', /over the limit/],
    ['cursor20MB', 'payload_too_large', /over the limit/],
    ['url20MB', 'invalid_request', /URL/],
    ['header20MB', 'payload_too_large', /over the limit/],
  ])('should refuse %s with %s, in the guest, with the host heap untouched', async (which, code, message) => {
    const r = await attempt(which);
    expect(r).toMatchObject({ name: 'TypeError', code });
    expect(r.message).toMatch(message);
    // Nothing of the 20–500 MB crossed: the host's own heap did not grow with it.
    expect(r.hostHeapGrowthMB).toBeLessThan(16);
  });

  it('should write nothing for any refused payload', async () => {
    expect((await p.tenants.get('sizes').store.app('b15').list({ prefix: '', limit: 10 })).entries).toEqual([]);
  });

  it('should cap a flood of un-awaited fetches at 256 in flight (B14)', async () => {
    const heap = process.memoryUsage().heapUsed;
    expect(await callOnce(p, 'sizes', 'b15', app, 'fetchFlood', 5_000)).toBe(5_000 - 256);
    expect((process.memoryUsage().heapUsed - heap) / 1048576).toBeLessThan(64);
  });
});

describe('deep nesting', () => {
  it('should store and read back a value nested 10,000 deep', async () => {
    expect(await attempt('deepValue')).toMatchObject({ ok: 10_000 });
  });

  it('should drop a log field nested 10,000 deep without failing the call', async () => {
    expect(await attempt('deepLog')).toMatchObject({ ok: 'logged' });
  });
});

describe('over HTTP', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ tenants: [{ id: 'sizes-http', limits: { cpu_ms: 2000 } }] });
    await s.deploy('sizes-http', 'b15', app);
  });
  afterAll(() => s?.dispose());

  it.each([5_000, 10_000, 100_000])('should answer 400 to JSON args nested %i deep, and keep serving', async (depth) => {
    const body = '['.repeat(depth) + ']'.repeat(depth);
    const token = await s.token('sizes-http');
    for (const url of ['/v1/tenants/sizes-http/apps/b15/calls/echo', `/v1/tenants/sizes-http/instances/${await s.launch('sizes-http', 'b15')}/calls/echo`]) {
      const res = await s.inject({ method: 'POST', url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: body });
      expect(expectError(res, 400, 'invalid_request')).toMatch(/nested too deeply/);
    }
    expect((await s.oneShot('sizes-http', 'b15', 'echo', { small: true })).json()).toEqual({ result: 'received' });
  });

  it('should return a result nested 10,000 deep as it is (the host never re-serialises it)', async () => {
    const res = await s.oneShot('sizes-http', 'b15', 'deepResult');
    expect(res.statusCode).toBe(200);
    expect(res.body.startsWith('{"result":' + '['.repeat(10_000) + '1')).toBe(true);
  });
});
