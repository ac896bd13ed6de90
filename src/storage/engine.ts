/**
 * Picks the storage engine of a config (`deployment.storage.engine`). With PostgreSQL every
 * tenant's role, schema or database is made ready before anything else starts, so a platform
 * user without the privileges to create them stops start-up with one coded storage_error
 * naming what is missing (and `isohost storage init --print-sql` prints the statements).
 */
import type { PlatformConfig } from '../config/schema.ts';
import type { StorageBackend } from './backend.ts';
import { LevelStorageBackend } from './leveldb.ts';
import { PostgresStorageBackend } from './postgres/backend.ts';

/**
 * @example
 * const backend = await openStorageBackend(config);
 * const store = await backend.open({ namespace: 'acme', isolation: 'schema', quotaBytes: 1048576 });
 */
export async function openStorageBackend(config: PlatformConfig): Promise<StorageBackend> {
  const storage = config.deployment.storage;
  if (storage.engine === 'leveldb') return new LevelStorageBackend({ dataDir: config.deployment.data_dir });
  const backend = new PostgresStorageBackend({ url: storage.url, poolMax: storage.pool_max });
  try {
    await backend.provision(config.tenants.map((t) => ({ namespace: t.storage.namespace, isolation: t.storage.isolation })));
  } catch (err) {
    await backend.close();
    throw err;
  }
  return backend;
}
