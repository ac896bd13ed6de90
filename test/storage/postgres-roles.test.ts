/**
 * Issue 13: each tenant's PostgreSQL role reaches only its own schema or database. Checked
 * below the API, by connecting as the roles with `pg` and trying; then the set-up paths: a
 * platform user without CREATEROLE/CREATEDB stops with a coded error naming what is missing,
 * `isohost storage init --print-sql` prints what a superuser runs, and after that the same
 * user starts; purge drops the role and schema or database and makes them anew; the quota
 * holds across two backends (two nodes) on one PostgreSQL.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import { openPlatform } from '../../src/platform.ts';
import { PostgresStorageBackend } from '../../src/storage/postgres/backend.ts';
import { cli } from '../helpers/cli.ts';
import { testConfigObject } from '../helpers/platform.ts';
import { postgresAvailable, postgresFixture, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { listAll, tenantSpec } from '../helpers/storage-backend.ts';
import { tempDir } from '../helpers/tmp.ts';

vi.setConfig({ testTimeout: 120_000 });
const binaries = await postgresAvailable();
let server: PostgresServer;
beforeAll(async () => {
  if (binaries !== null) server = await startPostgres(binaries);
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

/** Runs `work` on a fresh connection to `url` (extra startup options allowed), then closes it. */
async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>, options?: string): Promise<T> {
  const client = new pg.Client({ connectionString: url, ...(options === undefined ? {} : { options }) });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The SQLSTATE a promise rejects with (42501 = insufficient_privilege). */
async function sqlstate(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'no error';
}

describe.skipIf(binaries === null)('PostgreSQL tenant roles', () => {
  it('should let a tenant role read its own tables and nothing of another tenant, whatever the query names', async () => {
    const fx = await postgresFixture(server);
    const backend = fx.backend();
    const stores = {
      a: await backend.open(tenantSpec('a', 'schema')),
      b: await backend.open(tenantSpec('b', 'schema')),
      c: await backend.open(tenantSpec('c', 'database')),
      d: await backend.open(tenantSpec('d', 'database')),
    };
    for (const [name, store] of Object.entries(stores)) await store.app('notes').set('secret', JSON.stringify(name));
    const id = (ns: string) => backend.identOf(ns);
    const table = (ns: string) => `"${id(ns)}".entries`;

    // A session the way isohost runs a tenant's queries: the platform user, switched to the tenant role at startup.
    await withClient(fx.url, async (asA) => {
      expect((await asA.query(`SELECT count(*)::int AS n FROM ${table('a')}`)).rows[0].n).toBe(1);
      expect(await sqlstate(asA.query(`SELECT * FROM ${table('b')}`))).toBe('42501');
      expect(await sqlstate(asA.query(`INSERT INTO ${table('b')} VALUES ('x', '\\x00', '\\x00')`))).toBe('42501');
      expect(await sqlstate(asA.query(`SELECT "${id('b')}".isohost_apply('notes', '{f}', '{\\\\x6b}', '{\\\\x31}', 1000)`))).toBe('42501');
      expect(await sqlstate(asA.query(`SELECT "${id('b')}".isohost_set('notes', '\\x6b', '\\x31', 1000)`))).toBe('42501');
      expect(await sqlstate(asA.query(`SELECT "${id('b')}".isohost_delete('notes', '\\x6b')`))).toBe('42501');
    }, `-c role=${id('a')}`);
    // In C's own database, D's role sees none of C's tables either.
    await withClient(server.urlFor('postgres', id('c')), async (asD) => {
      expect(await sqlstate(asD.query(`SELECT * FROM ${table('c')}`))).toBe('42501');
    }, `-c role=${id('d')}`);

    // Now as the roles themselves: given LOGIN for this test only, A may not even connect to C's or D's database.
    await withClient(server.url, async (admin) => {
      for (const ns of ['a', 'c']) await admin.query(`ALTER ROLE "${id(ns)}" LOGIN`);
    });
    expect(await sqlstate(withClient(server.urlFor(id('a'), id('c')), async () => {}))).toBe('42501');
    expect(await sqlstate(withClient(server.urlFor(id('c'), id('d')), async () => {}))).toBe('42501');
    await withClient(server.urlFor(id('c'), id('c')), async (asC) => {
      expect((await asC.query(`SELECT convert_from(value, 'UTF8') AS v FROM ${table('c')}`)).rows).toEqual([{ v: '"c"' }]);
    });
    await withClient(server.urlFor(id('a'), fx.database), async (asA) => {
      expect(await sqlstate(asA.query(`SELECT * FROM ${table('b')}`))).toBe('42501');
      expect(await sqlstate(asA.query(`SET ROLE "${id('b')}"`))).toBe('42501');
      expect(await sqlstate(asA.query(`CREATE TABLE public.spill (x int)`))).toBe('42501');
    });
    await fx.dispose();
  });

  it('should keep two tenants apart whose names PostgreSQL would have cut to the same 63 bytes', async () => {
    const fx = await postgresFixture(server);
    const backend = fx.backend();
    const long = 'n'.repeat(60);
    const [x, y] = [await backend.open(tenantSpec(`${long}-x`, 'schema')), await backend.open(tenantSpec(`${long}-y`, 'database'))];
    await x.app('a').set('k', '"x"');
    await y.app('a').set('k', '"y"');
    expect([await x.app('a').get('k'), await y.app('a').get('k')]).toEqual(['"x"', '"y"']);
    expect(backend.identOf(`${long}-x`)).not.toBe(backend.identOf(`${long}-y`));
    await fx.dispose();
  });

  it('should commit every write with synchronous_commit on', async () => {
    const fx = await postgresFixture(server);
    await withClient(server.url, (admin) => admin.query(`ALTER DATABASE "${fx.database}" SET synchronous_commit = off`));
    const store = await fx.backend().open(tenantSpec('sync', 'schema'));
    await store.app('a').set('k', '1');
    // The pool's sessions override the database default; read it through one of them.
    const seen = await (store as unknown as { query(c: pg.QueryConfig): Promise<pg.QueryResult<{ synchronous_commit: string }>> }).query({ text: 'SHOW synchronous_commit' });
    expect(seen.rows[0].synchronous_commit).toBe('on');
    await fx.dispose();
  });

  it('should let four backends (nodes) start at once on the same tenants', async () => {
    const fx = await postgresFixture(server);
    const nodes = [fx.backend(), fx.backend(), fx.backend(), fx.backend()];
    const specs = [{ namespace: 'r1', isolation: 'schema' as const }, { namespace: 'r2', isolation: 'database' as const }];
    await Promise.all(nodes.map((n) => n.provision(specs)));
    const stores = await Promise.all(nodes.flatMap((n) => specs.map((t) => n.open({ ...t, quotaBytes: 1_000_000 }))));
    await Promise.all(stores.map((s, i) => s.app('a').set(`k${i}`, '1')));
    for (const t of specs) expect(await listAll((await fx.backend().open(tenantSpec(t.namespace, t.isolation))).app('a'))).toHaveLength(4);
    await fx.dispose();
  });

  it('should hold the quota across two backends (two nodes) writing one tenant at once', async () => {
    const fx = await postgresFixture(server);
    for (const isolation of ['schema', 'database'] as const) {
      const nodes = [await fx.backend().open(tenantSpec(`both-${isolation}`, isolation, 5000)), await fx.backend().open(tenantSpec(`both-${isolation}`, isolation, 5000))];
      const value = JSON.stringify('v'.repeat(995)); // 1000 bytes with a 3-byte key
      const writes = Array.from({ length: 20 }, (_, i) => nodes[i % 2].app('app').set(`k${String(i).padStart(2, '0')}`, value));
      const results = await Promise.allSettled(writes);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(Array(15).fill('resource_exhausted'));
      await (nodes[0] as unknown as { refreshUsage(): Promise<void> }).refreshUsage();
      expect(nodes[0].usageBytes()).toBe(5000);
    }
    await fx.dispose();
  });

  it('should drop the role and the schema or database on purge, and make them anew', async () => {
    const fx = await postgresFixture(server);
    const backend = fx.backend();
    const oids = () =>
      withClient(server.url, async (admin) => {
        const ids = [backend.identOf('ps'), backend.identOf('pd')];
        const roles = await admin.query('SELECT rolname, oid::int FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname', [ids]);
        const dbs = await admin.query('SELECT datname, oid::int FROM pg_database WHERE datname = ANY($1)', [ids]);
        return JSON.stringify([roles.rows, dbs.rows]);
      });
    const s = await backend.open(tenantSpec('ps', 'schema'));
    const d = await backend.open(tenantSpec('pd', 'database'));
    await s.app('x').set('k', '1');
    await d.app('x').set('k', '1');
    const before = await oids();
    await s.purge();
    await d.purge();
    expect(await oids()).not.toBe(before);
    expect(await s.app('x').get('k')).toBeUndefined();
    await d.app('x').set('k', '2');
    expect(await d.app('x').get('k')).toBe('2');
    await fx.dispose();
  });

  it('should stop a platform user without CREATEROLE/CREATEDB with a coded error, print the SQL, and start once it is applied', async () => {
    const fx = await postgresFixture(server);
    await withClient(server.url, async (admin) => {
      await admin.query('CREATE ROLE plain LOGIN');
      await admin.query(`GRANT CREATE ON DATABASE "${fx.database}" TO plain`);
    });
    const url = server.urlFor('plain', fx.database);
    const dir = await tempDir('isohost-pg-cli-');
    const config = testConfigObject(dir.path, [{ id: 'shop', isolation: 'schema' }, { id: 'bank', isolation: 'database' }]);
    const file = join(dir.path, 'config.json');
    await writeFile(file, JSON.stringify({ ...config, deployment: { ...config.deployment, storage: { engine: 'postgres', url } } }));

    const refused = new PostgresStorageBackend({ url });
    await expect(refused.provision([{ namespace: 'shop', isolation: 'schema' }, { namespace: 'bank', isolation: 'database' }])).rejects.toMatchObject({
      code: 'storage_error',
      message: expect.stringMatching(/"plain" may not create: role "[^"]+_shop" \(needs CREATEROLE\).*role "[^"]+_bank" \(needs CREATEROLE\).*database "[^"]+_bank" \(needs CREATEDB\).*storage init --print-sql/),
    });
    await refused.close();
    // Start-up of the platform stops the same way, before any tenant opens.
    const validated = validateConfig(JSON.parse(await readFile(file, 'utf8')), dir.path);
    await expect(openPlatform(validated, { logger: pino({ level: 'silent' }) })).rejects.toMatchObject({ code: 'storage_error', message: expect.stringContaining('needs CREATEDB') });
    const failed = await cli(['storage', 'init', '--config', file]);
    expect(failed.code).toBe(1);
    expect(failed.lastError?.error).toMatchObject({ code: 'storage_error', message: expect.stringContaining('needs CREATEROLE') });

    const printed = await cli(['storage', 'init', '--print-sql', '--config', file]);
    expect(printed.code).toBe(0);
    // Apply it as a superuser, as psql would: one statement per line, \connect switches database.
    let current = fx.database;
    for (const line of printed.stdout.split('\n')) {
      if (line.startsWith('--') || line.trim() === '') continue;
      const connect = /^\\connect "(.+)"$/.exec(line);
      if (connect !== null) {
        current = connect[1];
        continue;
      }
      await withClient(server.urlFor('postgres', current), (c) => c.query(line));
    }
    expect(printed.stdout).toContain('CREATE DATABASE');

    const ok = await cli(['storage', 'init', '--config', file]);
    expect(ok.stdout).toContain('"ok":true');
    const backend = new PostgresStorageBackend({ url });
    for (const [ns, isolation] of [['shop', 'schema'], ['bank', 'database']] as const) {
      const store = await backend.open(tenantSpec(ns, isolation, 1000));
      await store.app('a').set('k', '"v"');
      expect(await store.app('a').get('k')).toBe('"v"');
      await expect(store.app('a').set('big', JSON.stringify('x'.repeat(2000)))).rejects.toMatchObject({ code: 'resource_exhausted' });
      // Without the right to drop roles the purge empties the tenant's tables instead.
      await store.purge();
      expect(await store.app('a').get('k')).toBeUndefined();
      expect(store.usageBytes()).toBe(0);
    }
    await backend.close();
    await dir.dispose();
    await fx.dispose();
  });
});
