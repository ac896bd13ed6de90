/**
 * The on-disk layout seen from the raw DB: a schema tenant's keys all sit under
 * `!<namespace>!` in data_dir/shared, a database tenant's in data_dir/tenants/<ns>.
 * This is the structural reason §C(18) holds, checked below the API.
 */
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterEach, expect, it } from 'vitest';
import { storageFixture, tenantSpec } from '../helpers/storage-backend.ts';

let fx: Awaited<ReturnType<typeof storageFixture>>;
afterEach(() => fx.dispose());

async function rawKeys(path: string): Promise<string[]> {
  const db = new ClassicLevel<string, string>(path, { createIfMissing: false });
  try {
    return await db.keys().all();
  } finally {
    await db.close();
  }
}

it('should put every key of a tenant under its own prefix or directory', async () => {
  fx = await storageFixture();
  const backend = fx.backend();
  const schema = await backend.open(tenantSpec('bu-a', 'schema'));
  const database = await backend.open(tenantSpec('acme', 'database'));
  for (const store of [schema, database]) {
    await store.app('notes').set('../b', '1');
    await store.app('notes').set('\u0000!x!', '2');
    await store.system().set('bundle', '"code"');
  }
  await backend.close();

  expect(await rawKeys(join(fx.dataDir, 'shared'))).toEqual(['!bu-a!!a!!notes!\u0000!x!', '!bu-a!!a!!notes!../b', '!bu-a!!s!bundle']);
  expect(await rawKeys(join(fx.dataDir, 'tenants', 'acme'))).toEqual(['!a!!notes!\u0000!x!', '!a!!notes!../b', '!s!bundle']);
});
