/**
 * Issue 13: the keys every node of a PostgreSQL platform shares, below the HTTP API. Two
 * stores on one platform database stand for two nodes: a realm seeded by one is the same
 * realm on the other, a rotation or retirement on one is seen by the other after its
 * recheck, the egress key is one key, and a tenant's role cannot read the platform schema.
 * The node directory: a node finds another's address, a second live node of one id is
 * refused, a node that left or went silent is unavailable by name.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPgRealmKeyStore, loadOrCreatePgEgressKey } from '../../src/storage/postgres/platform-keys.ts';
import { PLATFORM_SCHEMA, PlatformDb, platformSchemaStatement } from '../../src/storage/postgres/platform-schema.ts';
import { DEAD_AFTER_MS, NodeDirectory } from '../../src/storage/postgres/node-directory.ts';
import { postgresAvailable, postgresFixture, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { tenantSpec } from '../helpers/storage-backend.ts';

vi.setConfig({ testTimeout: 120_000 });
const binaries = await postgresAvailable();
let server: PostgresServer | null = null;
let fx: Awaited<ReturnType<typeof postgresFixture>>;
const dbs: PlatformDb[] = [];
const open = () => {
  const db = new PlatformDb(fx.url);
  dbs.push(db);
  return db;
};

beforeAll(async () => {
  if (binaries === null) return;
  server = await startPostgres(binaries);
  fx = await postgresFixture(server);
}, 120_000);
afterAll(async () => {
  await Promise.allSettled(dbs.map((d) => d.close()));
  await fx?.dispose();
  await server?.stop();
});

describe.skipIf(binaries === null)('platform keys in PostgreSQL', () => {
  it('should seed a realm once and show a rotation and a retirement on one node to the other after its recheck', async () => {
    const node1 = createPgRealmKeyStore(open(), { recheckMs: 0 });
    const node2 = createPgRealmKeyStore(open(), { recheckMs: 0 });
    const [a, b] = await Promise.all([node1.signingKey('bu-a'), node2.signingKey('bu-a')]);
    expect(a.kid).toBe(b.kid);
    expect(await node2.list('bu-a')).toHaveLength(1);

    const gen = await node1.refresh('bu-a');
    const rotated = await node2.rotate('bu-a');
    expect(rotated.kid).not.toBe(a.kid);
    expect((await node1.signingKey('bu-a')).kid).toBe(rotated.kid);
    expect(await node1.refresh('bu-a')).not.toBe(gen);
    expect((await node1.publicJwks('bu-a')).keys.map((k) => k.kid)).toEqual([a.kid, rotated.kid]);

    await node1.retire('bu-a', a.kid);
    expect((await node2.publicJwks('bu-a')).keys.map((k) => k.kid)).toEqual([rotated.kid]);
    expect((await node2.list('bu-a')).map((e) => e.status)).toEqual(['retired', 'active']);
    await expect(node2.retire('bu-a', rotated.kid)).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(node2.retire('bu-a', 'x'.repeat(43))).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('should keep serving the cached keys until the recheck interval passes', async () => {
    const slow = createPgRealmKeyStore(open(), { recheckMs: 60_000 });
    const other = createPgRealmKeyStore(open(), { recheckMs: 0 });
    const first = await slow.signingKey('bu-b');
    await other.rotate('bu-b');
    expect((await slow.signingKey('bu-b')).kid).toBe(first.kid);
  });

  it('should land two rotations made at once on two nodes, one after the other', async () => {
    const node1 = createPgRealmKeyStore(open(), { recheckMs: 0 });
    const node2 = createPgRealmKeyStore(open(), { recheckMs: 0 });
    await node1.signingKey('bu-c');
    const [r1, r2] = await Promise.all([node1.rotate('bu-c'), node2.rotate('bu-c')]);
    const kids = (await node1.list('bu-c')).map((e) => e.kid);
    expect(kids).toHaveLength(3);
    expect(kids).toEqual(expect.arrayContaining([r1.kid, r2.kid]));
  });

  it('should give every node the same egress key of 32 bytes', async () => {
    const [k1, k2] = await Promise.all([loadOrCreatePgEgressKey(open()), loadOrCreatePgEgressKey(open())]);
    expect(k1.length).toBe(32);
    expect(k1.equals(k2)).toBe(true);
  });

  it('should refuse a tenant role any read of the platform schema', async () => {
    await createPgRealmKeyStore(open()).signingKey('bu-d');
    const backend = fx.backend();
    await backend.open(tenantSpec('acme', 'schema', 1024 * 1024));
    const role = backend.identOf('acme');
    // A session the way isohost runs a tenant's queries: the platform user, switched to the tenant role at startup.
    const client = new pg.Client({ connectionString: fx.url, options: `-c role=${role}` });
    await client.connect();
    try {
      expect((await client.query('SELECT current_user AS u')).rows[0].u).toBe(role);
      for (const table of ['realm_keys', 'secrets', 'nodes']) {
        await expect(client.query(`SELECT * FROM ${PLATFORM_SCHEMA}.${table}`)).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await client.end();
    }
  });

  it('should name the missing privilege when the platform user may not create the platform schema, and work once a superuser made it', async () => {
    const admin = new pg.Client(fx.url);
    await admin.connect();
    try {
      await admin.query('CREATE ROLE keys_plain LOGIN');
      const plain = new PlatformDb(server!.urlFor('keys_plain', fx.database));
      dbs.push(plain);
      await expect(loadOrCreatePgEgressKey(plain)).rejects.toMatchObject({ code: 'storage_error', message: expect.stringContaining('needs CREATE on the platform database') });
      // What `isohost storage init --print-sql` prints for it, run by a superuser in another database of the server.
      await admin.query('CREATE DATABASE keys_other');
      const other = new pg.Client(server!.urlFor('postgres', 'keys_other'));
      await other.connect();
      await other.query(platformSchemaStatement('keys_plain')).finally(() => other.end());
      const granted = new PlatformDb(server!.urlFor('keys_plain', 'keys_other'));
      dbs.push(granted);
      expect((await loadOrCreatePgEgressKey(granted)).length).toBe(32);
    } finally {
      await admin.end();
    }
  });

  it('should keep signing and verifying with the keys already read while PostgreSQL is down', async () => {
    const keys = createPgRealmKeyStore(open(), { recheckMs: 0 });
    const { kid } = await keys.signingKey('bu-outage');
    await server!.stopServer('fast');
    try {
      expect((await keys.signingKey('bu-outage')).kid).toBe(kid);
      expect((await keys.publicJwks('bu-outage')).keys.map((k) => k.kid)).toEqual([kid]);
      // A realm never read, and any change, need PostgreSQL.
      await expect(keys.signingKey('bu-unread')).rejects.toMatchObject({ code: 'storage_error' });
      await expect(keys.rotate('bu-outage')).rejects.toMatchObject({ code: 'storage_error' });
    } finally {
      await server!.start();
    }
    const rotated = await keys.rotate('bu-outage');
    expect((await keys.signingKey('bu-outage')).kid).toBe(rotated.kid);
  });

  it('should fail with storage_error, not hang, when PostgreSQL cannot be reached', async () => {
    const db = new PlatformDb('postgres://postgres@127.0.0.1:1/none');
    dbs.push(db);
    await expect(createPgRealmKeyStore(db).signingKey('bu-e')).rejects.toMatchObject({ code: 'storage_error' });
  });
});

describe.skipIf(binaries === null)('node directory in PostgreSQL', () => {
  it('should give one node the address another announced, and refuse a second live node of the same id', async () => {
    const one = new NodeDirectory(open(), 'n-1');
    const two = new NodeDirectory(open(), 'n-2');
    await one.announce('http://127.0.0.1:1001');
    await two.announce('http://127.0.0.1:1002');
    expect(await two.addressOf('n-1')).toBe('http://127.0.0.1:1001');
    expect(await one.addressOf('n-2')).toBe('http://127.0.0.1:1002');
    const twin = new NodeDirectory(open(), 'n-1');
    await expect(twin.announce('http://127.0.0.1:1003')).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringContaining('"n-1" is in use') });
    // The same node coming back at its own address is welcome.
    const again = new NodeDirectory(open(), 'n-2');
    await again.announce('http://127.0.0.1:1002');
    await Promise.all([one.close(), two.close(), again.close()]);
  });

  it('should answer unavailable naming a node that left, never announced, or stopped beating', async () => {
    const db = open();
    const gone = new NodeDirectory(db, 'n-gone');
    await gone.announce('http://127.0.0.1:1004');
    await gone.close();
    const reader = new NodeDirectory(open(), 'n-reader');
    await expect(reader.addressOf('n-gone')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('node n-gone is not reachable') });
    await expect(reader.addressOf('n-never')).rejects.toMatchObject({ code: 'unavailable' });
    const silent = new NodeDirectory(db, 'n-silent');
    await silent.announce('http://127.0.0.1:1005');
    await db.query(`UPDATE ${PLATFORM_SCHEMA}.nodes SET heartbeat_at = now() - make_interval(secs => $1) WHERE node_id = 'n-silent'`, [DEAD_AFTER_MS / 1000 + 1]);
    await expect(reader.addressOf('n-silent')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('no heartbeat') });
    // Dead for long enough, its id may be taken by a node at another address.
    const successor = new NodeDirectory(open(), 'n-silent');
    await successor.announce('http://127.0.0.1:1006');
    reader.forget('n-silent');
    expect(await reader.addressOf('n-silent')).toBe('http://127.0.0.1:1006');
    await Promise.all([silent.close(), successor.close()]);
  });
});
