/**
 * Uploaded bundles count against the tenant's `storage_mb` (THREATS F47; issue 10,
 * deliverable 4): every stored version's bytes are the tenant's stored data, so an upload
 * over the quota is 429 `resource_exhausted` naming the quota and stores nothing, while
 * another tenant uploads as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

declare const fc: any;

/** A valid bundle of about `kib` KiB, distinct per `tag`. */
function paddedBundle(tag: string, kib: number): string {
  const source = bundleOf({
    ping: () => 'pong',
    async keep(args: { n: number }) {
      await fc.storage.set('blob', 'x'.repeat(args.n));
      return 'kept';
    },
  });
  return `${source}// ${tag} ${'p'.repeat(kib * 1024)}\n`;
}

const QUOTA_BYTES = 0.1 * 1024 * 1024; // storage_mb: 0.1
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'tight', limits: { storage_mb: 0.1 } }, { id: 'roomy', isolation: 'database' }] });
});
afterAll(() => s?.dispose());

const upload = async (tenant: string, app: string, source: string) =>
  s.inject({
    method: 'PUT',
    url: `/v1/tenants/${tenant}/apps/${app}`,
    headers: { ...bearer(await s.token(tenant, 'deployer')), 'content-type': 'application/javascript' },
    payload: source,
  });

async function storedBytes(tenant: string): Promise<number> {
  const body = (await s.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(body.match(new RegExp(`^isohost_storage_bytes\\{tenant="${tenant}"\\} (\\d+)$`, 'm'))?.[1]);
}

describe('bundles against storage_mb', () => {
  it('should count every stored version and refuse an upload over the quota with 429 naming it', async () => {
    expect(await storedBytes('tight')).toBe(0);
    const first = paddedBundle('one', 40);
    expect((await upload('tight', 'app', first)).statusCode).toBe(201);
    const afterOne = await storedBytes('tight');
    expect(afterOne).toBeGreaterThan(first.length);
    // A second version of the same app and the same bytes under another app: the
    // new version counts, the shared bytes are stored (and counted) once.
    expect((await upload('tight', 'app', paddedBundle('two', 40))).statusCode).toBe(201);
    const afterTwo = await storedBytes('tight');
    expect(afterTwo - afterOne).toBeGreaterThan(40 * 1024);
    expect((await upload('tight', 'other', first)).statusCode).toBe(201);
    const afterSame = await storedBytes('tight');
    expect(afterSame - afterTwo).toBeLessThan(1024);

    // A third 40 KiB version does not fit in 0.1 MiB.
    const res = await upload('tight', 'app', paddedBundle('three', 40));
    expect(expectError(res, 429, 'resource_exhausted')).toMatch(/storage quota exceeded \(storage_mb\)/);
    // Nothing of it was stored: usage and the app's versions are unchanged.
    expect(await storedBytes('tight')).toBe(afterSame);
    const list = await s.inject({ method: 'GET', url: '/v1/tenants/tight/apps', headers: bearer(await s.token('tight', 'deployer')) });
    const app = (list.json() as { apps: { app: string; versions: unknown[] }[] }).apps.find((a) => a.app === 'app');
    expect(app?.versions).toHaveLength(2);
    expect(await storedBytes('tight')).toBeLessThanOrEqual(QUOTA_BYTES);

    // The apps' own data shares the quota: the room the bundles took is not there for it.
    const id = await s.launch('tight', 'app');
    expectError(await s.call('tight', id, 'keep', { n: 40 * 1024 }), 429, 'resource_exhausted');
    expect(resultOf(await s.call('tight', id, 'keep', { n: 1024 }))).toBe('kept');

    // Another tenant uploads the same sizes as before.
    for (const tag of ['one', 'two', 'three']) expect((await upload('roomy', 'app', paddedBundle(tag, 40))).statusCode).toBe(201);
  });
});
