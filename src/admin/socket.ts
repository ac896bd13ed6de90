/**
 * The admin socket of `isohost serve`: HTTP/1.1 over a Unix socket at `<data_dir>/admin.sock`,
 * mode 0600, so only the server's own user (and root) can reach it. There is no TCP listener:
 * no remote admin endpoint exists. `isohost tenant export|import|purge` talk to it while the
 * server holds the stores (client.ts), and open the stores themselves when nobody listens.
 *
 *   GET  /tenants/:id/export   200 application/x-ndjson: the export (archive-format.ts), streamed
 *   POST /tenants/:id/import   body: an export; 200 { tenant, from, apps, versions, entries, realm_keys_ignored }
 *   POST /tenants/:id/purge    200 { tenant, purged: true }
 *
 * Errors: `{ "error": { code, message } }` with the code's HTTP status (src/errors.ts). An
 * export that fails after its first line ends the response early: the client sees no
 * trailer and reports the export as failed.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, readdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { IsohostError, toIsohostError } from '../errors.ts';
import type { Identity } from '../identity/registry.ts';
import type { Platform } from '../platform.ts';
import { ndjsonLines } from './ndjson-lines.ts';
import { adminSocketPath } from './socket-path.ts';
import { exportTenant, importTenant, maxLineBytes, type ArchiveTarget } from './tenant-archive.ts';

export interface AdminSocketOptions {
  platform: Platform;
  identity: Identity;
  logger: Logger;
}

export interface AdminSocket {
  /** Absolute path of the socket. */
  readonly path: string;
  /** Stops accepting, ends open connections and removes the socket file. */
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 10_000;
const SPOOL = /^admin-import-[0-9a-f]{16}\.ndjson$/;
const ROUTE = /^\/tenants\/([a-z0-9-]{1,63})\/(export|import|purge)$/;

/**
 * Opens the admin socket. A live socket at the path (another process answers on it) is
 * refused with `unavailable`; a stale one (nobody answers) is removed; any other file there
 * is refused and left alone.
 *
 * @example
 * const admin = await startAdminSocket({ platform, identity, logger: logger.child({ component: 'admin-socket' }) });
 * // … on shutdown:
 * await admin.close();
 */
export async function startAdminSocket(opts: AdminSocketOptions): Promise<AdminSocket> {
  const { platform, logger } = opts;
  const path = adminSocketPath(platform.config.deployment.data_dir);
  await clearStale(path);
  await removeSpools(platform.config.deployment.data_dir);
  let writes: Promise<unknown> = Promise.resolve();
  // Imports and purges run one at a time: an import's quota check must still hold when it writes.
  const serialised = <T>(work: () => Promise<T>): Promise<T> => {
    const run = writes.then(work, work);
    writes = run.catch(() => undefined);
    return run;
  };
  // No request timeout: the socket is the owner's alone, and a large import may take minutes to upload.
  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    handle(opts, serialised, req, res).catch((err: unknown) => {
      const e = toIsohostError(err);
      if (e.code === 'internal') logger.error({ err }, 'admin request failed');
      else logger.warn({ code: e.code, msg: e.message, url: req.url }, 'admin request refused');
      if (res.headersSent) res.destroy(e);
      else reply(res, e.status, e.toJSON());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // umask 0177 while bind(2) creates the file: it is 0600 from its first instant, not after a chmod.
    // listen() binds synchronously for a path (no cluster), so the umask covers exactly that call.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  await chmod(path, 0o600);
  server.on('error', (err) => logger.error({ err }, 'admin socket error'));
  logger.info({ path }, 'admin socket listening');
  return {
    path,
    async close() {
      // An import that is writing finishes (it would otherwise stop half-way); idle
      // connections go at once, and whatever still runs after the grace period is cut.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      await closed;
      clearTimeout(force);
      await unlink(path).catch(() => undefined);
    },
  };
}

async function handle(opts: AdminSocketOptions, serialised: <T>(work: () => Promise<T>) => Promise<T>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { platform, identity, logger } = opts;
  const m = ROUTE.exec(req.url ?? '');
  const [, tenantId, op] = m ?? [];
  const method = op === 'export' ? 'GET' : 'POST';
  if (m === null || req.method !== method) throw new IsohostError('not_found', 'no such admin route');
  const tenant = platform.tenants.get(tenantId!);
  const maxBundleBytes = platform.config.deployment.max_bundle_bytes;
  const target: ArchiveTarget = { tenant, apps: platform.apps, maxBundleBytes };
  if (op === 'export') {
    const lines = exportTenant({ ...target, realmJwks: (realm) => identity.jwks(realm), node: hostname() });
    const header = await lines.next(); // after the export's first reads: their failure is still a coded answer
    if (header.done === true) throw new IsohostError('internal', 'the export produced no header');
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(header.value);
    await pipeline(Readable.from(lines), res);
    logger.info({ tenant: tenant.id }, 'tenant exported');
    return;
  }
  if (op === 'purge') {
    await serialised(async () => {
      await tenant.store.purge();
      platform.apps.forget(tenant);
    });
    logger.info({ tenant: tenant.id }, 'tenant purged');
    reply(res, 200, { tenant: tenant.id, purged: true });
    return;
  }
  // The import is read twice (validate, then write): spool it to a file only this user can read.
  const spool = join(platform.config.deployment.data_dir, `admin-import-${randomBytes(8).toString('hex')}.ndjson`); // matches SPOOL
  try {
    await pipeline(req, createWriteStream(spool, { flags: 'wx', mode: 0o600 }));
    const summary = await serialised(() => importTenant(target, () => ndjsonLines(createReadStream(spool), maxLineBytes(maxBundleBytes))));
    logger.info(summary, 'tenant imported');
    reply(res, 200, summary);
  } finally {
    await unlink(spool).catch(() => undefined);
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Removes import spools a killed server left behind (one server per data dir: none is in use). */
async function removeSpools(dataDir: string): Promise<void> {
  for (const name of await readdir(dataDir)) {
    if (SPOOL.test(name)) await unlink(join(dataDir, name)).catch(() => undefined);
  }
}

/** Removes a stale socket at `path`; refuses a live one or a file that is not a socket. */
async function clearStale(path: string): Promise<void> {
  const stat = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (stat === null) return;
  if (!stat.isSocket()) throw new IsohostError('unavailable', `${path} exists and is not a socket; move it away`);
  // ECONNREFUSED is the one answer that proves nobody listens: a socket file left by a killed server.
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect(path, () => {
      s.destroy();
      resolve(false);
    });
    s.setTimeout(1000, () => s.destroy(new Error('timeout')));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
  if (!refused) throw new IsohostError('unavailable', `another process serves the admin socket ${path}`);
  await unlink(path);
}
