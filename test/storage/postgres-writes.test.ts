/**
 * Issue 13: the write functions of src/storage/postgres/ddl.ts under concurrency, checked
 * below the API with SQL. Two backends (two nodes) race sets, deletes and batches of the
 * same keys and the usage row still equals what is stored; a write that only shrinks the
 * tenant or changes no size still waits for the tenant's write lock (the argument in
 * ddl.ts); a tenant made by an earlier version gets the current functions at start-up.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TenantStore } from '../../src/storage/backend.ts';
import type { PostgresStorageBackend } from '../../src/storage/postgres/backend.ts';
import { postgresAvailable, postgresFixture, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { tenantSpec, type Isolation } from '../helpers/storage-backend.ts';

vi.setConfig({ testTimeout: 120_000 });
const binaries = await postgresAvailable();
let server: PostgresServer;
beforeAll(async () => {
  if (binaries !== null) server = await startPostgres(binaries);
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

/** A superuser session on the database that holds the tenant's schema. */
async function tenantDatabase<T>(fx: { url: string }, backend: PostgresStorageBackend, namespace: string, isolation: Isolation, work: (c: pg.Client, schema: string) => Promise<T>): Promise<T> {
  const ident = backend.identOf(namespace);
  const client = new pg.Client(isolation === 'schema' ? fx.url : server.urlFor('postgres', ident));
  await client.connect();
  try {
    return await work(client, `"${ident}"`);
  } finally {
    await client.end();
  }
}

/** The usage row and the bytes actually stored (keys + values), read with SQL. */
async function usageAndStored(client: pg.Client, schema: string): Promise<{ used: number; stored: number }> {
  const result = await client.query(
    `SELECT (SELECT bytes FROM ${schema}.usage)::float8 AS used, (SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0) FROM ${schema}.entries)::float8 AS stored`,
  );
  return result.rows[0];
}

describe.skipIf(binaries === null).each(['schema', 'database'] as const)('PostgreSQL writes (%s)', (isolation) => {
  it('should keep the usage row equal to what is stored while two nodes race sets, deletes and batches of the same keys', async () => {
    const fx = await postgresFixture(server);
    const [one, two] = [fx.backend(), fx.backend()];
    const nodes: TenantStore[] = [await one.open(tenantSpec('race', isolation)), await two.open(tenantSpec('race', isolation))];
    const keys = ['a', 'b', 'c'];
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const app = nodes[i % 2].app('app');
      const key = keys[i % keys.length];
      const value = JSON.stringify('x'.repeat((i * 7) % 50));
      // Growing, shrinking, same-size and absent-key writes, of one key and of several.
      if (i % 5 === 0) writes.push(app.delete(key));
      else if (i % 7 === 0) writes.push(app.batch([{ op: 'set', key, value }, { op: 'delete', key: keys[(i + 1) % keys.length] }]));
      else if (i % 11 === 0) writes.push(app.batch([{ op: 'delete', key }]));
      else writes.push(app.set(key, value));
    }
    await Promise.all(writes);
    const counted = await tenantDatabase(fx, one, 'race', isolation, usageAndStored);
    expect(counted.stored).toBeGreaterThan(0);
    expect(counted.used).toBe(counted.stored);
    await fx.dispose();
  });

  it('should let two nodes together store no more than the quota', async () => {
    const fx = await postgresFixture(server);
    const quota = 20_000;
    const nodes: TenantStore[] = [await fx.backend().open(tenantSpec('q', isolation, quota)), await fx.backend().open(tenantSpec('q', isolation, quota))];
    const value = JSON.stringify('v'.repeat(993)); // 1000 bytes with a 5-byte key
    await nodes[0].app('app-0').set('kpre0', value);
    const writes = Array.from({ length: 60 }, (_, i) => nodes[i % 2].app(`app-${i % 3}`).set(`k${String(i).padStart(4, '0')}`, value));
    // A same-size rewrite and a delete of an absent key change nothing and pass whatever the quota.
    writes.push(nodes[1].app('app-0').set('kpre0', value), nodes[1].app('app-1').delete('absent'));
    const results = await Promise.allSettled(writes.slice(0, 60));
    await Promise.all(writes.slice(60));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(19);
    expect(new Set(results.flatMap((r) => (r.status === 'rejected' ? [r.reason.code] : [])))).toEqual(new Set(['resource_exhausted']));
    const counted = await tenantDatabase(fx, fx.backend(), 'q', isolation, usageAndStored);
    expect(counted).toEqual({ used: quota, stored: quota });
    await fx.dispose();
  });

  it('should make a delete and a same-size set wait for the tenant write lock held by another writer', async () => {
    const fx = await postgresFixture(server);
    const backend = fx.backend();
    const store = await backend.open(tenantSpec('lock', isolation));
    const app = store.app('app');
    await app.set('gone', '"soon"');
    await app.set('same', '"size"');
    await app.set('held', '1');
    const ident = backend.identOf('lock');
    // Another node's write, left open: it holds the tenant's lock until its transaction ends. It
    // changes no size, so it holds no usage row lock: only the advisory lock can hold the others up.
    const holder = new pg.Client({ connectionString: isolation === 'schema' ? fx.url : server.urlFor('postgres', ident), options: `-c role=${ident} -c search_path=${ident}` });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query("SELECT isohost_set('app', '\\x68656c64'::bytea, '\\x32'::bytea, 1000000)");
    let settled = false;
    const ops = [app.delete('gone'), app.set('same', '"SIZE"')].map((op) =>
      op.finally(() => {
        settled = true;
      }),
    );
    const waiting = Promise.all(ops);
    // Both must show up as waiting for the advisory lock; a write that skipped it would settle instead.
    const waiters = async () =>
      Number((await holder.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n);
    let seen = await waiters();
    while (seen < 2 && !settled) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = await waiters();
    }
    expect(settled).toBe(false);
    expect(seen).toBe(2);
    await holder.query('COMMIT');
    await holder.end();
    await waiting;
    expect(await app.get('gone')).toBeUndefined();
    expect(await app.get('same')).toBe('"SIZE"');
    expect(await app.get('held')).toBe('2');
    const counted = await tenantDatabase(fx, backend, 'lock', isolation, usageAndStored);
    expect(counted.used).toBe(counted.stored);
    await fx.dispose();
  });

  it('should give a tenant made by an earlier version the current write functions at start-up', async () => {
    const fx = await postgresFixture(server);
    const first = fx.backend();
    const store = await first.open(tenantSpec('old', isolation));
    await store.app('app').set('k', '"v"');
    await first.close();
    // As an earlier version left it: no isohost_set / isohost_delete, isohost_apply pinned to a search_path.
    await tenantDatabase(fx, first, 'old', isolation, async (client, schema) => {
      await client.query(`DROP FUNCTION ${schema}.isohost_set(text, bytea, bytea, bigint)`);
      await client.query(`DROP FUNCTION ${schema}.isohost_delete(text, bytea)`);
      await client.query(`ALTER FUNCTION ${schema}.isohost_apply(text, boolean[], bytea[], bytea[], bigint) SET search_path = ${schema}`);
    });
    const reopened = await fx.backend().open(tenantSpec('old', isolation, 1000));
    await reopened.app('app').set('k2', '"w"');
    await reopened.app('app').delete('k');
    await expect(reopened.app('app').set('big', JSON.stringify('x'.repeat(2000)))).rejects.toMatchObject({ code: 'resource_exhausted' });
    expect(reopened.usageBytes()).toBe(Buffer.byteLength('k2"w"'));
    const config = await tenantDatabase(fx, first, 'old', isolation, async (client, schema) =>
      (await client.query(`SELECT proname, proconfig FROM pg_proc WHERE pronamespace = '${schema}'::regnamespace ORDER BY proname`)).rows,
    );
    expect(config).toEqual([
      { proname: 'isohost_apply', proconfig: null },
      { proname: 'isohost_delete', proconfig: null },
      { proname: 'isohost_set', proconfig: null },
    ]);
    await fx.dispose();
  });
});
