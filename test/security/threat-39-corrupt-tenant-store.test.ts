/**
 * THREATS E39, regression: one tenant's own database (isolation: database) is corrupt
 * when the host starts. Before the fix, opening it threw and took the whole host down —
 * `serve`, `run` and `tenant export` failed for every tenant. Now only that tenant fails,
 * with a coded, path-free storage_error, while the other tenants' mini-apps deploy, run
 * and store as before; its files are left as they were for the operator to repair.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { openPlatform } from '../../src/platform.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { cli } from '../helpers/cli.ts';
import { expectSanitised, writeConfigFile } from '../helpers/security-fixtures.ts';
import { startServerOn, type SecurityServer } from '../helpers/security-server.ts';
import { tempDir } from '../helpers/tmp.ts';

declare const fc: any;

const app = bundleOf({
  async put(v: unknown) {
    await fc.storage.set('k', v);
    return fc.storage.get('k');
  },
  async probe() {
    try {
      return { value: await fc.storage.get('seed') };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: e.message, stack: String(e.stack) };
    }
  },
});

const SECRETS = ['ns-broken', 'ns-good', 'ns-shared'];
let dir: Awaited<ReturnType<typeof tempDir>>;
let configFile: string;
let manifest: { path: string; bytes: Buffer };
let server: SecurityServer;

beforeAll(async () => {
  dir = await tempDir('isohost-sec-corrupt-');
  configFile = writeConfigFile(dir.path, [
    { id: 'good', namespace: 'ns-good', isolation: 'database', limits: { cpu_ms: 1000 } },
    { id: 'broken', namespace: 'ns-broken', isolation: 'database', limits: { cpu_ms: 1000 } },
    { id: 'shared', namespace: 'ns-shared', isolation: 'schema', limits: { cpu_ms: 1000 } },
  ]);
  const seed = await openPlatform(loadConfig(configFile), { logger: pino({ level: 'silent' }), warmPool: 0 });
  for (const t of seed.tenants.all()) await t.store.app('app').set('seed', JSON.stringify(t.id));
  await seed.close();
  const tenantDir = join(dir.path, 'tenants', 'ns-broken');
  const path = join(tenantDir, (await readdir(tenantDir)).find((f) => f.startsWith('MANIFEST-'))!);
  await writeFile(path, Buffer.alloc(4096, 0xab));
  manifest = { path, bytes: await readFile(path) };
  server = await startServerOn(configFile);
});
afterAll(async () => {
  await server?.close();
  await dir.dispose();
});

describe('one corrupt tenant database at start-up (E39)', () => {
  it('should start the host and serve the other tenants: deploy, call, store', async () => {
    for (const tenant of ['good', 'shared']) {
      expect((await server.deploy(tenant, 'app', app)).statusCode).toBe(201);
      const res = await server.oneShot(tenant, 'app', 'put', { tenant });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ result: { tenant } });
      expect((await server.oneShot(tenant, 'app', 'probe')).json()).toEqual({ result: { value: tenant } });
    }
  });

  it('should fail the broken tenant alone with a coded, path-free storage_error', async () => {
    const res = await server.deploy('broken', 'app', app);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('storage_error');
    expect(res.json().error.message).toMatch(/corrupt/);
    expectSanitised(res.json().error.message, [dir.path, ...SECRETS]);
    expect((await server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    // Ready for the tenants it can serve: one broken tenant does not take the host out of rotation.
    const ready = await server.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode, ready.body).toBe(200);
  });

  it('should let a mini-app of the broken tenant see storage_error, not a host path', async () => {
    const tenant = server.platform.tenants.get('broken');
    const { info } = await server.platform.host.launch(tenant, { id: 'app', version: 'v1', source: app, sha256: 'corrupt-test' }, null);
    const seen = JSON.parse(await server.platform.host.call(tenant, null, info.id, 'probe', 'null'));
    expect(seen).toMatchObject({ name: 'Error', code: 'storage_error' });
    expectSanitised(seen.message, [dir.path, ...SECRETS, 'broken']);
    expectSanitised(seen.stack, [dir.path, ...SECRETS]);
  });

  it('should keep the CLI working for the other tenants and fail the broken one with exit 1', async () => {
    await server.close();
    server = undefined as unknown as SecurityServer;
    // One after the other: each CLI process opens (and locks) every store of data_dir.
    const good = await cli(['tenant', 'export', 'good', '--config', configFile]);
    const broken = await cli(['tenant', 'export', 'broken', '--config', configFile]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('"key":"seed"');
    expect(broken.code).toBe(1);
    expect(broken.lastError?.error?.code).toBe('storage_error');
    expectSanitised(broken.lastError?.error?.message, [dir.path, ...SECRETS]);
  });

  it('should leave the corrupt files untouched for the operator', async () => {
    expect((await readFile(manifest.path)).equals(manifest.bytes)).toBe(true);
  });
});
