import { LevelStorageBackend } from '../../src/storage/leveldb.ts';
import { tempDir } from './tmp.ts';

export const MiB = 1_048_576;
export type Isolation = 'schema' | 'database';

/** A tenant spec for `backend.open()`; 100 MiB quota unless given. */
export function tenantSpec(namespace: string, isolation: Isolation, quotaBytes = 100 * MiB) {
  return { namespace, isolation, quotaBytes };
}

/**
 * A temp data_dir and the backends opened on it; `dispose()` closes them all and
 * removes the directory.
 *
 * @example
 * const fx = await storageFixture();
 * const store = await fx.backend().open(tenantSpec('a', 'schema'));
 * await fx.dispose();
 */
export async function storageFixture() {
  const dir = await tempDir('isohost-storage-');
  const opened: LevelStorageBackend[] = [];
  return {
    dataDir: dir.path,
    /** A new backend on the fixture's data_dir. */
    backend(): LevelStorageBackend {
      const backend = new LevelStorageBackend({ dataDir: dir.path });
      opened.push(backend);
      return backend;
    },
    async dispose(): Promise<void> {
      await Promise.allSettled(opened.map((b) => b.close()));
      await dir.dispose();
    },
  };
}

/** Every entry of an app as [key, value] pairs, walking all pages. */
export async function listAll(
  store: { list(o: { prefix: string; limit: number; cursor?: string }): Promise<{ entries: { key: string; value: string }[]; cursor: string | null }> },
  prefix = '',
  limit = 1000,
): Promise<[string, string][]> {
  const out: [string, string][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ prefix, limit, cursor });
    for (const e of page.entries) out.push([e.key, e.value]);
    cursor = page.cursor ?? undefined;
  } while (cursor !== undefined);
  return out;
}
