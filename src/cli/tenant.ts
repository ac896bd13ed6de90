/**
 * `isohost tenant export ID [--out FILE]`, `isohost tenant import FILE --tenant ID` and
 * `isohost tenant purge ID --yes`. Each first asks the server running on the data directory,
 * through its admin socket (src/admin/socket.ts); when no server runs there it opens the
 * stores itself. Both paths run the same export and import (src/admin/tenant-archive.ts);
 * the format is described in src/admin/archive-format.ts and the README.
 */
import { createReadStream } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { hostname } from 'node:os';
import pino from 'pino';
import { adminRequest, connectAdmin, readJson } from '../admin/client.ts';
import { ndjsonLines } from '../admin/ndjson-lines.ts';
import { exportTenant, importTenant, maxLineBytes, type ArchiveTarget } from '../admin/tenant-archive.ts';
import type { PlatformConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import { openKeyStore } from '../identity/key-store.ts';
import { openPlatform } from '../platform.ts';
import { configFrom, parse, required, requireTenant, UsageError } from './args.ts';

const USAGE = 'usage: isohost tenant export ID [--out FILE] | isohost tenant import FILE --tenant ID | isohost tenant purge ID --yes';
/** The end of a complete export: its trailer line. */
const TRAILER = /\{"kind":"end","entries":\d+\}\n$/;

export async function tenantCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, yes: { type: 'boolean' }, tenant: { type: 'string' } }, 2);
  const [sub, arg] = positionals;
  if ((sub !== 'export' && sub !== 'import' && sub !== 'purge') || arg === undefined) throw new UsageError(USAGE);
  if (sub === 'purge' && values.yes !== true) throw new UsageError('purge deletes all of the tenant\'s data; add --yes');
  const id = sub === 'import' ? required(values, 'tenant') : arg;
  const config = configFrom(values);
  requireTenant(config, id);
  if (sub === 'import') await checkReadable(arg);
  const socket = await connectAdmin(config.deployment.data_dir);
  const via = socket === null ? 'store' : 'admin-socket';
  const path = `/tenants/${id}/${sub}`;

  if (sub === 'export') {
    const lines = socket === null ? null : await adminRequest(socket, 'GET', path);
    const entries = await writeExport(values.out, async (out) => {
      if (lines !== null) return copy(lines, out);
      // The realm keys where this platform keeps them (the platform schema on PostgreSQL).
      const keys = openKeyStore(config).realms;
      return withStores(config, (target) => copy(exportTenant({ ...target, realmJwks: (realm) => keys.publicJwks(realm), node: hostname() }), out));
    });
    if (values.out !== undefined) log('tenant exported', { tenant: id, entries, file: values.out, via });
    return 0;
  }
  let result: unknown;
  if (socket !== null) {
    result = await readJson(await adminRequest(socket, 'POST', path, sub === 'import' ? createReadStream(arg) : undefined));
  } else if (sub === 'import') {
    result = await withStores(config, (target) => importTenant(target, () => ndjsonLines(createReadStream(arg), maxLineBytes(target.maxBundleBytes))));
  } else {
    result = await withStores(config, async ({ tenant }) => {
      await tenant.store.purge();
      return { tenant: id, purged: true };
    });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  log(sub === 'import' ? 'tenant imported' : 'tenant purged', { tenant: id, via });
  return 0;

  /** Opens the platform on the stores (they must be free), runs `work` on the tenant, closes. */
  async function withStores<T>(cfg: PlatformConfig, work: (target: ArchiveTarget) => Promise<T>): Promise<T> {
    const platform = await openPlatform(cfg, { warmPool: 0, logger: pino({ level: 'silent' }) });
    try {
      return await work({ tenant: platform.tenants.get(id), apps: platform.apps, maxBundleBytes: cfg.deployment.max_bundle_bytes });
    } finally {
      await platform.close();
    }
  }
}

/**
 * Writes an export to `file` (0600) or stdout and checks it ends with its trailer; a failed
 * export to a file leaves no file behind. Returns the number of lines written.
 */
async function writeExport(file: string | undefined, produce: (out: NodeJS.WritableStream) => Promise<{ lines: number; tail: string }>): Promise<number> {
  const out = file === undefined ? process.stdout : (await openOut(file)).createWriteStream();
  let failed: Error | undefined;
  out.on('error', (err: Error) => (failed ??= err));
  try {
    const { lines, tail } = await produce(out);
    if (!TRAILER.test(tail)) throw new IsohostError('unavailable', 'the export ended before its trailer');
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
    if (failed !== undefined) throw failed;
    return lines;
  } catch (err) {
    if (file !== undefined) {
      out.destroy();
      await unlink(file).catch(() => undefined);
    }
    if (err instanceof IsohostError) throw err;
    // A server that stops mid-export resets the stream (ECONNRESET); a full disk fails the write.
    throw new IsohostError('unavailable', `the export failed before its end: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Copies a stream of text or bytes with backpressure; counts lines and keeps the last bytes. */
async function copy(source: AsyncIterable<string | Buffer>, out: NodeJS.WritableStream): Promise<{ lines: number; tail: string }> {
  let lines = 0;
  let tail = Buffer.alloc(0);
  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) lines++;
    tail = Buffer.concat([tail, buf.subarray(-200)]).subarray(-200);
    if (!out.write(buf)) await once(out, 'drain');
  }
  return { lines, tail: tail.toString('latin1') };
}

async function openOut(file: string) {
  return open(file, 'w', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new IsohostError('invalid_request', `cannot write the export file ${file}: ${err.code ?? err.message}`);
  });
}

async function checkReadable(file: string): Promise<void> {
  const s = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new IsohostError('invalid_request', `cannot read the import file ${file}: ${err.code ?? err.message}`);
  });
  if (!s.isFile()) throw new IsohostError('invalid_request', `the import file ${file} is not a regular file`);
}

function log(msg: string, fields: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ level: 30, msg, ...fields }) + '\n');
}
