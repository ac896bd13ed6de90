/**
 * Tenant isolation over HTTP — the same app under tenants on a shared store (schema) and
 * on a database of its own cannot read each other's data — and one-shot instance reuse:
 * module state persists for the same (tenant, sub, version) and nowhere else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

// Declared here, not imported: vitest rewrites imported bindings, and guest code must name the isolate's own `fc`.
declare const fc: any;

/** Module-level state of the guest bundle (declared for the editor; defined by the prologue). */
declare const state: { n: number };

const STORE = bundleOf({
  put: async (args: { key: string; value: unknown }) => {
    await fc.storage.set(args.key, args.value);
    return true;
  },
  get: async (args: { key: string }) => (await fc.storage.get(args.key)) ?? null,
  keys: async () => (await fc.storage.list({ limit: 1000 })).entries.map((e: { key: string }) => e.key),
});
const COUNTER = (salt: string) => bundleOf({ bump: () => ++state.n }, `const state = { n: 0 }; // ${salt}`);

const TENANTS = ['alpha', 'gamma', 'beta'] as const; // alpha and gamma share a store; beta has its own
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha' }, { id: 'gamma' }, { id: 'beta', isolation: 'database' }] });
  for (const t of TENANTS) {
    await s.deploy(t, 'store', STORE);
    await s.deploy(t, 'counter', COUNTER('v1'));
  }
});
afterAll(() => s?.dispose());

describe('tenant isolation over HTTP', () => {
  it("should not let another tenant's calls read what a tenant stored", async () => {
    expect(resultOf(await s.oneShot('alpha', 'store', 'put', { key: 'secret', value: { owner: 'alpha' } }))).toBe(true);
    for (const t of ['gamma', 'beta']) {
      expect(resultOf(await s.oneShot(t, 'store', 'get', { key: 'secret' }))).toBeNull();
      expect(resultOf(await s.oneShot(t, 'store', 'keys', {}))).toEqual([]);
    }
    expect(resultOf(await s.oneShot('alpha', 'store', 'get', { key: 'secret' }))).toEqual({ owner: 'alpha' });
  });

  it('should keep the same key apart per tenant, in both directions', async () => {
    for (const t of TENANTS) expect(resultOf(await s.oneShot(t, 'store', 'put', { key: 'shared-name', value: t }, 'bob'))).toBe(true);
    for (const t of TENANTS) expect(resultOf(await s.oneShot(t, 'store', 'get', { key: 'shared-name' }, 'bob'))).toBe(t);
  });

  it('should share app data between subjects of one tenant (data belongs to the tenant app)', async () => {
    await s.oneShot('beta', 'store', 'put', { key: 'team', value: 'set by alice' }, 'alice');
    expect(resultOf(await s.oneShot('beta', 'store', 'get', { key: 'team' }, 'zoe'))).toBe('set by alice');
  });

  it('should not let keys with path or separator tricks reach another tenant', async () => {
    for (const key of ['../gamma/secret', '!gamma!secret', '\u0000secret', 'secret\u0000']) {
      const res = await s.oneShot('gamma', 'store', 'get', { key });
      if (res.statusCode === 200) expect(res.json()).toEqual({ result: null });
      else expect(res.statusCode).toBe(422);
    }
  });
});

describe('one-shot instance reuse', () => {
  it('should keep module state across sequential one-shot calls of the same tenant, sub and version', async () => {
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(resultOf(await s.oneShot('alpha', 'counter', 'bump', {}, 'reuser')));
    expect(seen).toEqual([1, 2, 3]);
  });

  it('should give a different sub a fresh instance', async () => {
    await s.oneShot('alpha', 'counter', 'bump', {}, 'sub-a');
    expect(resultOf(await s.oneShot('alpha', 'counter', 'bump', {}, 'sub-b'))).toBe(1);
    expect(resultOf(await s.oneShot('alpha', 'counter', 'bump', {}, 'sub-a'))).toBe(2);
  });

  it('should give the same sub of another tenant a fresh instance', async () => {
    await s.oneShot('alpha', 'counter', 'bump', {}, 'same-name');
    expect(resultOf(await s.oneShot('gamma', 'counter', 'bump', {}, 'same-name'))).toBe(1);
    expect(resultOf(await s.oneShot('beta', 'counter', 'bump', {}, 'same-name'))).toBe(1);
  });

  it('should give a new version a fresh instance', async () => {
    await s.oneShot('gamma', 'counter', 'bump', {}, 'upgrader');
    expect(resultOf(await s.oneShot('gamma', 'counter', 'bump', {}, 'upgrader'))).toBe(2);
    await s.deploy('gamma', 'counter', COUNTER('v2'));
    expect(resultOf(await s.oneShot('gamma', 'counter', 'bump', {}, 'upgrader'))).toBe(1);
  });

  it('should not share one-shot instances with explicitly launched ones', async () => {
    await s.oneShot('alpha', 'counter', 'bump', {}, 'mixer');
    const id = await s.launch('alpha', 'counter', 'mixer');
    expect(resultOf(await s.call('alpha', id, 'bump', {}, 'mixer'))).toBe(1);
    expect(resultOf(await s.oneShot('alpha', 'counter', 'bump', {}, 'mixer'))).toBe(2);
  });
});
