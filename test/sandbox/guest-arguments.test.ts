/**
 * Bad arguments from guest code reach fc.* as real calls: each rejects with a
 * TypeError-like error carrying a code and naming the limit, and nothing is written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf({
  async attempt(which: string) {
    const cyclic: any = {};
    cyclic.self = cyclic;
    const cases: Record<string, () => Promise<unknown>> = {
      emptyKey: () => fc.storage.set('', 1),
      longKey: () => fc.storage.set('k'.repeat(513), 1),
      longUtf8Key: () => fc.storage.set('é'.repeat(257), 1),
      nonStringKey: () => fc.storage.get(42),
      cyclicValue: () => fc.storage.set('k', cyclic),
      bigintValue: () => fc.storage.set('k', 10n),
      undefinedValue: () => fc.storage.set('k', undefined),
      functionValue: () => fc.storage.set('k', () => 1),
      hugeValue: () => fc.storage.set('k', 'x'.repeat(1024 * 1024 + 1)),
      listLimitZero: () => fc.storage.list({ limit: 0 }),
      listLimitHuge: () => fc.storage.list({ limit: 5000 }),
      listBadCursor: () => fc.storage.list({ cursor: '!!not-a-cursor!!' }),
      batchNotArray: () => fc.storage.batch({ op: 'set' }),
      batchBadOp: () => fc.storage.batch([{ op: 'set', key: 'ok', value: 1 }, { op: 'drop', key: 'k' }]),
      batchTooMany: () => fc.storage.batch(Array.from({ length: 1001 }, (_, i) => ({ op: 'set', key: 'b' + i, value: i }))),
      fetchBadUrl: () => fc.fetch('not a url'),
      fetchWithoutProxy: () => fc.fetch('http://example.test/'),
    };
    try {
      await cases[which]!();
      return { ok: true };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: String(e.message) };
    }
  },
  async count() {
    return (await fc.storage.list({ limit: 1000 })).entries.length;
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'args', isolation: 'database', limits: { cpu_ms: 2000 } }]);
});
afterAll(() => p.dispose());

const expectations: [string, string, RegExp][] = [
  ['emptyKey', 'invalid_request', /1\.\.512/],
  ['longKey', 'invalid_request', /512/],
  ['longUtf8Key', 'invalid_request', /512/],
  ['nonStringKey', 'invalid_request', /key/],
  ['cyclicValue', 'invalid_request', /JSON/],
  ['bigintValue', 'invalid_request', /JSON/],
  ['undefinedValue', 'invalid_request', /JSON/],
  ['functionValue', 'invalid_request', /JSON/],
  ['hugeValue', 'payload_too_large', /1 MiB/],
  ['listLimitZero', 'invalid_request', /limit/],
  ['listLimitHuge', 'invalid_request', /limit/],
  ['listBadCursor', 'invalid_request', /cursor/],
  ['batchNotArray', 'invalid_request', /array/],
  ['batchBadOp', 'invalid_request', /batch\[1\]/],
  ['batchTooMany', 'invalid_request', /1000/],
  ['fetchBadUrl', 'invalid_request', /URL/i],
  // schemes and hosts are the egress proxy's (test/egress); this platform runs without one
  ['fetchWithoutProxy', 'egress_denied', /not available/],
];

describe('bad arguments from guest code', () => {
  it.each(expectations)('should reject %s with %s', async (which, code, re) => {
    const r = await callOnce(p, 'args', 'args-app', app, 'attempt', which);
    expect(r.code).toBe(code);
    // fetch failures are TypeErrors, as in browsers; the code says which
    expect(r.name).toBe('TypeError');
    expect(r.message).toMatch(re);
  });

  it('should have written nothing', async () => {
    expect(await callOnce(p, 'args', 'args-app', app, 'count')).toBe(0);
  });
});
