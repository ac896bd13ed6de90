/**
 * THREATS §E 38-39: a second open of a store is a coded, path-free storage_error; a
 * broken database of one tenant fails that tenant only; raw level errors never leave.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { LevelStorageBackend } from '../../src/storage/leveldb.ts';
import { listAll, storageFixture, tenantSpec } from '../helpers/storage-backend.ts';

let fx: Awaited<ReturnType<typeof storageFixture>>;
afterEach(() => fx.dispose());

/** A coded storage error whose message holds neither the data_dir nor the namespace. */
function expectSafeStorageError(err: unknown, namespace: string, pattern: RegExp): void {
  expect(err).toBeInstanceOf(IsohostError);
  const { code, message } = err as IsohostError;
  expect(code).toBe('storage_error');
  expect(message).toMatch(pattern);
  expect(message).not.toContain(fx.dataDir);
  expect(message).not.toContain(namespace);
  expect(message).not.toMatch(/LOCK|IO error|\//);
}

describe.each(['schema', 'database'] as const)('a second open of the same directory (%s)', (isolation) => {
  it('should fail with storage_error "locked", then succeed once the first closes', async () => {
    fx = await storageFixture();
    const first = fx.backend();
    const store = await first.open(tenantSpec('locked-ns', isolation));
    await store.app('app').set('k', '1');
    const second = fx.backend();
    const err = await second.open(tenantSpec('locked-ns', isolation)).catch((e: unknown) => e);
    expectSafeStorageError(err, 'locked-ns', /locked/);
    expect(await store.app('app').get('k')).toBe('1');

    await first.close();
    const retried = await second.open(tenantSpec('locked-ns', isolation));
    expect(await retried.app('app').get('k')).toBe('1');
  });
});

describe('a broken database of one tenant', () => {
  async function seedThree() {
    const backend = fx.backend();
    for (const spec of [tenantSpec('ok-own', 'database'), tenantSpec('broken', 'database'), tenantSpec('ok-shared', 'schema')]) {
      await (await backend.open(spec)).app('app').set('k', JSON.stringify(spec.namespace));
    }
    await backend.close();
  }

  async function expectOthersWork() {
    const backend = fx.backend();
    for (const spec of [tenantSpec('ok-own', 'database'), tenantSpec('ok-shared', 'schema')]) {
      const app = (await backend.open(spec)).app('app');
      expect(await app.get('k')).toBe(JSON.stringify(spec.namespace));
      await app.set('after', '1');
      expect(await listAll(app)).toHaveLength(2);
    }
    return backend;
  }

  it('should fail only that tenant when its manifest is corrupt', async () => {
    fx = await storageFixture();
    await seedThree();
    const dir = join(fx.dataDir, 'tenants', 'broken');
    const manifest = (await readdir(dir)).find((f) => f.startsWith('MANIFEST-'))!;
    await writeFile(join(dir, manifest), Buffer.alloc(4096, 0xab));
    const backend = await expectOthersWork();
    expectSafeStorageError(await backend.open(tenantSpec('broken', 'database')).catch((e: unknown) => e), 'broken', /corrupt/);
    await backend.check();
  });

  it('should fail only that tenant when its directory is unusable', async () => {
    fx = await storageFixture();
    await seedThree();
    const dir = join(fx.dataDir, 'tenants', 'broken');
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a directory');
    const backend = await expectOthersWork();
    expectSafeStorageError(await backend.open(tenantSpec('broken', 'database')).catch((e: unknown) => e), 'broken', /read or write error/);
  });

  it('should fail only that tenant when its CURRENT points nowhere', async () => {
    fx = await storageFixture();
    await seedThree();
    await writeFile(join(fx.dataDir, 'tenants', 'broken', 'CURRENT'), 'MANIFEST-999999\n');
    const backend = await expectOthersWork();
    expectSafeStorageError(await backend.open(tenantSpec('broken', 'database')).catch((e: unknown) => e), 'broken', /read or write error/);
  });
});

describe('backend', () => {
  it('should validate open() arguments and reuse open stores', async () => {
    fx = await storageFixture();
    const backend = fx.backend();
    await expect(backend.open(tenantSpec('../x', 'schema'))).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(backend.open(tenantSpec('UP', 'database'))).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(backend.open({ namespace: 'x', isolation: 'other' as never, quotaBytes: 1 })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(backend.open(tenantSpec('x', 'schema', -1))).rejects.toMatchObject({ code: 'invalid_request' });
    const [one, two] = await Promise.all([backend.open(tenantSpec('same', 'schema')), backend.open(tenantSpec('same', 'schema'))]);
    expect(one).toBe(two);
    await expect(backend.open(tenantSpec('same', 'database'))).rejects.toMatchObject({ code: 'invalid_request' });
    await backend.check();
    await backend.close();
    await expect(backend.open(tenantSpec('same', 'schema'))).rejects.toMatchObject({ code: 'unavailable' });
    await expect(backend.check()).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('should turn operations on a closed store into storage_error', async () => {
    fx = await storageFixture();
    const backend = fx.backend();
    const app = (await backend.open(tenantSpec('closing', 'database'))).app('app');
    await backend.close();
    await expect(app.set('k', '1')).rejects.toMatchObject({ code: 'storage_error' });
    await expect(app.get('k')).rejects.toMatchObject({ code: 'storage_error' });
  });

  it('should create data_dir when it is missing', async () => {
    fx = await storageFixture();
    const backend = new LevelStorageBackend({ dataDir: join(fx.dataDir, 'a', 'b') });
    try {
      await (await backend.open(tenantSpec('x', 'schema'))).app('app').set('k', '1');
      await (await backend.open(tenantSpec('y', 'database'))).app('app').set('k', '1');
      expect((await readdir(join(fx.dataDir, 'a', 'b'))).sort()).toEqual(['shared', 'tenants']);
    } finally {
      await backend.close();
    }
  });
});
