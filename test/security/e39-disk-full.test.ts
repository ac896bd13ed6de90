/**
 * THREATS E39, disk full: one tenant's own database (isolation: database) lives on a
 * 1 MiB tmpfs mounted at `<data_dir>/tenants/<namespace>`. Its mini-app writes until the
 * disk is full: that write fails with a coded, path-free storage_error (ENOSPC never
 * reaches the guest), every write acknowledged before stays readable, and the other
 * tenants — another database and a shared-store namespace — keep writing.
 *
 * Needs root (mount(8)); elsewhere the test is skipped with the reason.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { canMountTmpfs, expectSanitised, mountTmpfs, writeConfigFile } from '../helpers/security-fixtures.ts';
import { startServerOn, type SecurityServer } from '../helpers/security-server.ts';
import { tempDir } from '../helpers/tmp.ts';

declare const fc: any;

const app = bundleOf({
  async fill() {
    const acked: string[] = [];
    const big = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 40; i++) {
      try {
        await fc.storage.set('k' + i, big);
        acked.push('k' + i);
      } catch (e: any) {
        return { acked, name: e.name, code: e.code, message: e.message };
      }
    }
    return { acked };
  },
  async lengths(keys: string[]) {
    const out: number[] = [];
    for (const k of keys) out.push(((await fc.storage.get(k)) as string).length);
    return out;
  },
  async small(tag: string) {
    await fc.storage.set('small', tag);
    return fc.storage.get('small');
  },
});

const scratch = await tempDir('isohost-sec-diskfull-');
const mountable = canMountTmpfs(scratch.path);
let dir: Awaited<ReturnType<typeof tempDir>>;
let unmount: (() => void) | undefined;
let server: SecurityServer;

describe.skipIf(mountable !== true)(`disk full for one tenant (E39)${mountable === true ? '' : ` — skipped: ${mountable}`}`, () => {
  beforeAll(async () => {
    dir = await tempDir('isohost-sec-diskfull-');
    const configFile = writeConfigFile(dir.path, [
      { id: 'full', namespace: 'ns-full', isolation: 'database', limits: { cpu_ms: 2000 } },
      { id: 'other', namespace: 'ns-other', isolation: 'database', limits: { cpu_ms: 2000 } },
      { id: 'shared', namespace: 'ns-shared', isolation: 'schema', limits: { cpu_ms: 2000 } },
    ]);
    const mount = mountTmpfs(join(dir.path, 'tenants', 'ns-full'), 1024);
    if ('skip' in mount) throw new Error(mount.skip);
    unmount = () => mount.unmount();
    server = await startServerOn(configFile);
    for (const tenant of ['full', 'other', 'shared']) expect((await server.deploy(tenant, 'app', app)).statusCode).toBe(201);
  });
  afterAll(async () => {
    await server?.close();
    unmount?.();
    await dir?.dispose();
  });

  it('should fail the write that does not fit with storage_error, and keep the acknowledged ones', async () => {
    const res = await server.oneShot('full', 'app', 'fill');
    expect(res.statusCode, res.body).toBe(200);
    const { acked, name, code, message } = res.json().result;
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.length).toBeLessThan(40);
    expect({ name, code }).toEqual({ name: 'Error', code: 'storage_error' });
    expectSanitised(message, [dir.path, 'ns-full', 'full']);
    const read = await server.oneShot('full', 'app', 'lengths', acked);
    expect(read.json()).toEqual({ result: acked.map(() => 200 * 1024) });
  });

  it('should keep the other tenants writing', async () => {
    for (const tenant of ['other', 'shared']) {
      const res = await server.oneShot(tenant, 'app', 'small', tenant);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ result: tenant });
    }
  });

  it('should keep failing the full tenant with a code, never with internal', async () => {
    const res = await server.oneShot('full', 'app', 'small', 'more');
    expect(res.statusCode).toBe(422);
    expect(res.json().error.message).toMatch(/^\[storage_error\]/);
    expectSanitised(res.json().error.message, [dir.path, 'ns-full']);
  });
});

afterAll(() => scratch.dispose());
