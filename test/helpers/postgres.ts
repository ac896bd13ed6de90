/**
 * A real PostgreSQL server for one test file: `initdb` into a temp directory, `pg_ctl start`
 * on a free loopback port (and a Unix socket in the same directory), a superuser URL, and
 * `stop()` for afterAll. PostgreSQL refuses to run as root, so as root the server runs as
 * the unprivileged `postgres` user (Debian's `postgresql` package creates it) via runuser.
 *
 * When no server can be had (no binaries, root without a `postgres` user) or
 * `ISOHOST_TEST_POSTGRES=off`, `findPostgres()` returns the reason and the suites skip, printing it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { PostgresStorageBackend } from '../../src/storage/postgres/backend.ts';

const run = promisify(execFile);

export interface PostgresBinaries {
  /** Folder holding initdb, pg_ctl and postgres. */
  readonly bin: string;
  /** Run the tools as this user (root: `postgres`), or null to run them as ourselves. */
  readonly asUser: { name: string; uid: number; gid: number } | null;
}

export interface PostgresServer {
  /** Superuser URL over TCP on 127.0.0.1. */
  readonly url: string;
  readonly port: number;
  /** `postgres://USER@127.0.0.1:PORT/DB` for another user or database (trust auth in tests). */
  urlFor(user: string, database?: string): string;
  /**
   * Stops the server; the data directory stays for `start()`. `immediate` is a crash as far
   * as the data is concerned: no checkpoint, the next start replays the WAL.
   */
  stopServer(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** The folder of the newest PostgreSQL on this machine: PATH first, then Debian's layout. */
function findBin(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'initdb'))) return dir;
  }
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return null;
  const versions = readdirSync(debian)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(debian, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(debian, versions[0], 'bin') : null;
}

async function idOf(name: string): Promise<{ uid: number; gid: number } | null> {
  try {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line === undefined) return null;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

/** What a suite needs to start servers, or why it cannot. */
export async function findPostgres(): Promise<{ ok: true; binaries: PostgresBinaries } | { ok: false; reason: string }> {
  if (process.env.ISOHOST_TEST_POSTGRES === 'off') return { ok: false, reason: 'ISOHOST_TEST_POSTGRES=off' };
  const bin = findBin();
  if (bin === null) return { ok: false, reason: 'PostgreSQL not installed (no pg_ctl/initdb on PATH or under /usr/lib/postgresql; Debian: apt-get install postgresql)' };
  if (userInfo().uid !== 0) return { ok: true, binaries: { bin, asUser: null } };
  const ids = await idOf('postgres');
  if (ids === null) return { ok: false, reason: 'running as root and there is no unprivileged "postgres" user to run PostgreSQL as' };
  return { ok: true, binaries: { bin, asUser: { name: 'postgres', ...ids } } };
}

/** Prints why the postgres suites skip; true when they run. */
export async function postgresAvailable(): Promise<PostgresBinaries | null> {
  const found = await findPostgres();
  if (!found.ok) {
    console.warn(`[postgres tests skipped] ${found.reason}`);
    return null;
  }
  return found.binaries;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function tool(binaries: PostgresBinaries, cwd: string, name: string, args: string[]): Promise<void> {
  const path = name === 'cp' ? 'cp' : join(binaries.bin, name);
  const [file, argv] = binaries.asUser === null ? [path, args] : ['runuser', ['-u', binaries.asUser.name, '--', path, ...args]];
  try {
    await run(file, argv, { cwd, timeout: 60_000, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${name} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/**
 * A freshly initialised data directory, shared read-only by every server of this machine:
 * initdb takes seconds, a copy a fraction of that. Built in a temp folder and renamed into
 * place, so a concurrent test file sees it whole or not at all.
 */
async function template(binaries: PostgresBinaries): Promise<string> {
  const owner = binaries.asUser?.uid ?? userInfo().uid;
  const key = createHash('sha256').update(binaries.bin).digest('hex').slice(0, 12);
  const path = join(tmpdir(), `isohost-pg-template-${owner}-${key}`);
  if (existsSync(join(path, 'PG_VERSION'))) return path;
  const work = await mkdtemp(join(tmpdir(), 'isohost-pg-init-'));
  try {
    if (binaries.asUser !== null) await chown(work, binaries.asUser.uid, binaries.asUser.gid);
    await tool(binaries, work, 'initdb', ['-D', join(work, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    await rename(join(work, 'data'), path).catch((err: NodeJS.ErrnoException) => {
      // Another test file won the race: its template is as good as ours.
      if (!existsSync(join(path, 'PG_VERSION'))) throw err;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return path;
}

/**
 * Starts a fresh server. Trust authentication on loopback and the socket: tests connect
 * as any role they made.
 *
 * @example
 * const pg = await startPostgres(binaries);
 * const backend = new PostgresStorageBackend({ url: pg.url });
 * afterAll(() => pg.stop());
 */
export async function startPostgres(binaries: PostgresBinaries, settings: { fsync?: boolean } = {}): Promise<PostgresServer> {
  const dir = await mkdtemp(join(tmpdir(), 'isohost-pg-'));
  if (binaries.asUser !== null) await chown(dir, binaries.asUser.uid, binaries.asUser.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  await tool(binaries, dir, 'cp', ['-a', await template(binaries), data]);
  // fsync off unless asked (the bench): tests never crash the OS, and seven test processes share one disk. A commit
  // still waits for its WAL write (synchronous_commit on), so a killed or immediately stopped
  // server loses no acknowledged write: that is what the tests check.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=16MB -c fsync=${settings.fsync === true ? 'on' : 'off'}`;
  const start = () => tool(binaries, dir, 'pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  const stopServer = (mode: 'fast' | 'immediate' = 'fast') => tool(binaries, dir, 'pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  await start();
  const urlFor = (user: string, database = 'postgres') => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    url: urlFor('postgres'),
    port,
    urlFor,
    start,
    stopServer,
    async stop() {
      await stopServer().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let fixtureCount = 0;

/**
 * Like `storageFixture()` of storage-backend.ts, on PostgreSQL: a fresh platform database
 * on `server` (tenant roles carry its name, so fixtures never share one), and the backends
 * opened on it; `dispose()` closes them.
 *
 * @example
 * const fx = await postgresFixture(server);
 * const store = await fx.backend().open(tenantSpec('a', 'schema'));
 */
export async function postgresFixture(server: PostgresServer) {
  const database = `platform_${process.pid}_${++fixtureCount}`;
  const admin = new pg.Client(server.url);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }
  const url = server.urlFor('postgres', database);
  const opened: PostgresStorageBackend[] = [];
  return {
    url,
    database,
    backend(options: { poolMax?: number } = {}): PostgresStorageBackend {
      const backend = new PostgresStorageBackend({ url, ...options });
      opened.push(backend);
      return backend;
    },
    async dispose(): Promise<void> {
      await Promise.allSettled(opened.map((b) => b.close()));
    },
  };
}
