/**
 * The app registry's caches evict, they do not empty (issue 11): the bundle cache is an
 * LRU bounded in bytes, so filling it drops the least recently used bundles and keeps the
 * busy ones. Before, the 257th bundle cleared the whole cache. A cache hit hands back the
 * same frozen bundle object; a miss reads the store and builds a new one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/apps/bundle.ts';
import { AppRegistry } from '../../src/apps/registry.ts';
import type { TenantContext } from '../../src/tenants/context.ts';
import { startTestPlatform } from '../helpers/platform.ts';

let p: Awaited<ReturnType<typeof startTestPlatform>>;
let tenant: TenantContext;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'cache', limits: { storage_mb: 200 } }]);
  tenant = p.tenants.get('cache');
});
afterAll(() => p.dispose());

/** A bundle of about `kib` KiB whose bytes name `app`. */
function bundle(app: string, kib = 1) {
  return readBundle(Buffer.from(`export const f = () => ${JSON.stringify(app)};\n//${'x'.repeat(kib * 1024)}`), 10 * 1024 * 1024);
}

describe('AppRegistry caches', () => {
  it('should keep a busy bundle cached while 300 other apps pass through (no clear when full)', async () => {
    const registry = new AppRegistry();
    const ids = Array.from({ length: 300 }, (_, i) => `app-${i}`);
    for (const id of ['busy', ...ids]) await registry.deploy(tenant, id, bundle(id), ['f']);
    const busy = await registry.active(tenant, 'busy');
    for (const id of ids) {
      await registry.active(tenant, id);
      expect(await registry.active(tenant, 'busy')).toBe(busy);
    }
  });

  it('should evict the least recently used bundles first when over its byte bound', async () => {
    // Room for about three 100 KiB bundles (UTF-16: 200 KiB each).
    const registry = new AppRegistry({ bundleCacheBytes: 700 * 1024 });
    for (const id of ['a', 'b', 'c', 'd']) await registry.deploy(tenant, id, bundle(id, 100), ['f']);
    const a = await registry.active(tenant, 'a');
    const b = await registry.active(tenant, 'b');
    const c = await registry.active(tenant, 'c');
    expect(await registry.active(tenant, 'a')).toBe(a); // a is now the most recent
    const d = await registry.active(tenant, 'd'); // over the bound: b goes
    expect(await registry.active(tenant, 'd')).toBe(d);
    expect(await registry.active(tenant, 'a')).toBe(a);
    expect(await registry.active(tenant, 'c')).toBe(c);
    const b2 = await registry.active(tenant, 'b');
    expect(b2).not.toBe(b);
    expect(b2).toEqual(b); // read again from the store, same content
  });
});
