/**
 * The rollout rules (issue 12) and what another node sees: buckets are stable and spread,
 * shares are checked, a second registry on the same store (another node) sees a rollback
 * once its cached record expires, and records written before versions had states read as
 * approved with their active version at 100 %.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/apps/bundle.ts';
import { AppRegistry, RECORD_TTL_MS } from '../../src/apps/registry.ts';
import { bucketOf, checkRollout, versionForBucket } from '../../src/apps/rollout.ts';
import type { TenantContext } from '../../src/tenants/context.ts';
import { startTestPlatform } from '../helpers/platform.ts';

const bundle = (n: number) => readBundle(Buffer.from(`export const version = () => ${n};`), 1 << 20);

describe('buckets and shares', () => {
  it('should put a subject in the same bucket every time, and spread 10,000 subjects evenly', () => {
    expect(bucketOf('notes', 'alice')).toBe(bucketOf('notes', 'alice'));
    const counts = new Array<number>(100).fill(0);
    for (let i = 0; i < 10_000; i++) counts[bucketOf('notes', `user-${i}`)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(150);
    // The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    const pairs = Array.from({ length: 50 }, (_, i) => bucketOf(`a${i}b`, 'c') !== bucketOf(`a${i}`, 'bc'));
    expect(pairs.filter(Boolean).length).toBeGreaterThan(40);
  });

  it('should deal buckets over cumulative shares in upload order', () => {
    const order = ['v1', 'v2', 'v3'];
    const rollout = { v3: 10, v1: 90 };
    expect(versionForBucket(rollout, order, 0)).toBe('v1');
    expect(versionForBucket(rollout, order, 89)).toBe('v1');
    expect(versionForBucket(rollout, order, 90)).toBe('v3');
    expect(versionForBucket(rollout, order, 99)).toBe('v3');
    expect(versionForBucket({}, order, 5)).toBeUndefined();
  });

  it('should refuse unknown versions, fractions, zero shares and sums other than 100', () => {
    const approved = new Set(['a', 'b']);
    expect(checkRollout({ a: 60, b: 40 }, approved)).toEqual({ a: 60, b: 40 });
    for (const bad of [{ a: 60, c: 40 }, { a: 60.5, b: 39.5 }, { a: 100, b: 0 }, { a: 50, b: 40 }, {}, [], null, 'a', { a: '100' }]) {
      expect(() => checkRollout(bad, approved), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
  });
});

describe('AppRegistry across nodes and record versions', () => {
  let p: Awaited<ReturnType<typeof startTestPlatform>>;
  let tenant: TenantContext;
  beforeAll(async () => {
    p = await startTestPlatform([{ id: 'nodes' }]);
    tenant = p.tenants.get('nodes');
  });
  afterAll(() => p.dispose());

  it('should let another node see a rollback once its cached record expires (well within a second)', async () => {
    const nodeA = new AppRegistry();
    const nodeB = new AppRegistry();
    const one = await nodeA.deploy(tenant, 'shop', bundle(1), ['version']);
    const two = await nodeA.deploy(tenant, 'shop', bundle(2), ['version']);
    expect((await nodeB.active(tenant, 'shop', 'alice')).version).toBe(two.version);
    await nodeA.setRollout(tenant, 'shop', { [one.version]: 100 });
    expect((await nodeA.active(tenant, 'shop', 'alice')).version).toBe(one.version);
    expect(RECORD_TTL_MS).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, RECORD_TTL_MS + 20));
    expect((await nodeB.active(tenant, 'shop', 'alice')).version).toBe(one.version);
  });

  it('should read a record written before states as approved, its active version at 100 %', async () => {
    const registry = new AppRegistry();
    const v = await registry.deploy(tenant, 'legacy', bundle(7), ['version']);
    const old = { app: 'legacy', active: v.version, versions: [{ version: v.version, sha256: v.sha256, size: v.size, methods: ['version'], created_at: v.created_at }] };
    await tenant.store.system().set('app:legacy', JSON.stringify(old));
    const fresh = new AppRegistry();
    const record = await fresh.record(tenant, 'legacy');
    expect(record?.versions[0]?.state).toBe('approved');
    expect(record?.rollout).toEqual({ [v.version]: 100 });
    expect((await fresh.active(tenant, 'legacy', 'anyone')).version).toBe(v.version);
  });

  it('should keep a pending version out until reviewed, and give an approved first version 100 %', async () => {
    const registry = new AppRegistry();
    const v = await registry.deploy(tenant, 'reviewed', bundle(9), ['version'], { uploadedBy: 'partner', review: true });
    expect(v.state).toBe('pending');
    await expect(registry.active(tenant, 'reviewed', 'alice')).rejects.toMatchObject({ code: 'not_found' });
    await registry.review(tenant, 'reviewed', v.version, 'approved', { sub: 'olga', realm: 'ops' });
    expect((await registry.record(tenant, 'reviewed'))?.rollout).toEqual({ [v.version]: 100 });
    await expect(registry.review(tenant, 'reviewed', v.version, 'rejected', { sub: 'olga', realm: 'ops' })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
