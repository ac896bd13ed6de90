/**
 * `isohost tenant export ID [--out FILE]`: all of one tenant's app data as NDJSON
 * (`{"app","key","value"}` per line). `isohost tenant purge ID --yes`: deletes that
 * tenant's data and nothing else. Both open the stores directly, so they refuse to run
 * while a server holds the store's lock (storage_error).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import pino from 'pino';
import { openPlatform } from '../platform.ts';
import { configFrom, parse, UsageError, requireTenant } from './args.ts';

export async function tenantCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, yes: { type: 'boolean' } }, 2);
  const [sub, id] = positionals;
  if ((sub !== 'export' && sub !== 'purge') || id === undefined) {
    throw new UsageError('usage: isohost tenant export ID [--out FILE] | isohost tenant purge ID --yes');
  }
  if (sub === 'purge' && values.yes !== true) throw new UsageError('purge deletes all of the tenant\'s data; add --yes');
  const config = configFrom(values);
  requireTenant(config, id);
  const platform = await openPlatform(config, { warmPool: 0, logger: pino({ level: 'silent' }) });
  try {
    const tenant = platform.tenants.get(id);
    if (sub === 'purge') {
      await tenant.store.purge();
      process.stdout.write(JSON.stringify({ tenant: id, purged: true }) + '\n');
      return 0;
    }
    const out = values.out === undefined ? process.stdout : createWriteStream(values.out, { mode: 0o600 });
    let n = 0;
    for await (const e of tenant.store.exportEntries()) {
      const line = `{"app":${JSON.stringify(e.app)},"key":${JSON.stringify(e.key)},"value":${e.value}}\n`;
      if (!out.write(line)) await once(out, 'drain');
      n++;
    }
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
      process.stderr.write(JSON.stringify({ level: 30, msg: 'tenant exported', tenant: id, entries: n, file: values.out }) + '\n');
    }
    return 0;
  } finally {
    await platform.close();
  }
}
