/**
 * `isohost storage init [--print-sql]` (issue 13). With `deployment.storage.engine: postgres`:
 * `init` creates every tenant's role and schema or database that the platform user may
 * create, and the platform schema, and fails naming what it may not; `--print-sql` connects nowhere and prints the
 * statements an operator runs by hand as a superuser instead.
 */
import { PostgresStorageBackend } from '../storage/postgres/backend.ts';
import { initSql } from '../storage/postgres/init-sql.ts';
import { PlatformDb } from '../storage/postgres/platform-schema.ts';
import { configFrom, parse, UsageError } from './args.ts';

export async function storageCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'print-sql': { type: 'boolean' } }, 1);
  if (positionals[0] !== 'init') throw new UsageError('usage: isohost storage init [--print-sql] [--config FILE]');
  const config = configFrom(values);
  const storage = config.deployment.storage;
  if (storage.engine !== 'postgres') throw new UsageError('deployment.storage.engine is leveldb: LevelDB needs no init (set engine: postgres and url)');
  const tenants = config.tenants.map((t) => ({ namespace: t.storage.namespace, isolation: t.storage.isolation }));
  if (values['print-sql'] === true) {
    process.stdout.write(initSql(storage.url, tenants));
    return 0;
  }
  const backend = new PostgresStorageBackend({ url: storage.url, poolMax: 1 });
  const platform = new PlatformDb(storage.url);
  try {
    await backend.provision(tenants);
    // The platform's own schema too: shared keys and the node list ("More than one machine").
    await platform.ensure();
  } finally {
    await backend.close();
    await platform.close();
  }
  process.stdout.write(JSON.stringify({ ok: true, tenants: config.tenants.map((t) => t.id) }) + '\n');
  return 0;
}
