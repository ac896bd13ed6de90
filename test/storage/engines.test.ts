/**
 * One suite, every storage engine: LevelDB (the embedded default) and PostgreSQL (issue 13)
 * must behave the same behind `StorageBackend`. Key/value limits, list order (UTF-8 byte
 * order) and cursors, atomic batches, acknowledged writes seen by a fresh backend, the quota
 * checked inside the write, export, purge, tenant isolation, the system() keyspace.
 * The PostgreSQL half needs a real server (test/helpers/postgres.ts) and skips, saying why,
 * where none can be had.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppStore, StorageBackend, TenantStore } from '../../src/storage/backend.ts';
import { decodeCursor, encodeCursor, MAX_BATCH_OPS } from '../../src/storage/key-codec.ts';
import { postgresAvailable, postgresFixture, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { listAll, MiB, storageFixture, tenantSpec, type Isolation } from '../helpers/storage-backend.ts';

interface EngineFixture {
  backend(): StorageBackend;
  dispose(): Promise<void>;
}

// CREATE DATABASE and DROP DATABASE take seconds on a shared, busy disk.
vi.setConfig({ testTimeout: 120_000 });
const binaries = await postgresAvailable();
let server: PostgresServer | null = null;
beforeAll(async () => {
  if (binaries !== null) server = await startPostgres(binaries);
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

const ENGINES: [string, () => Promise<EngineFixture>][] = [
  ['leveldb', () => storageFixture()],
  ['postgres', () => postgresFixture(server!)],
];

const ISOLATIONS = ['schema', 'database'] as const;
const PAIRS: [Isolation, Isolation][] = [['schema', 'schema'], ['database', 'database'], ['schema', 'database'], ['database', 'schema']];

/** Entry size as the quota counts it: UTF-8 bytes of key + value. */
const size = (key: string, value: string) => Buffer.byteLength(key) + Buffer.byteLength(value);
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Keys whose byte order differs from UTF-16 order (U+FFFF < U+10FFFF in UTF-8), NUL, separators. */
const TRICKY_KEYS = ['../b', 'a!b', '\u0000', '\u0000\u0000', '!a!', '!', '"', 'a', '~', '\u007f', '\uffff', '\u{10ffff}', 'é', 'k\u0000!a!!notes!x', 'x'.repeat(512)];

async function exported(tenant: TenantStore) {
  const out = [];
  for await (const entry of tenant.exportEntries()) out.push(entry);
  return out;
}

describe.each(ENGINES)('storage engine %s', (engine, makeFixture) => {
  const skip = engine === 'postgres' && binaries === null;
  let fx: EngineFixture;
  afterEach(async () => {
    await fx?.dispose();
  });
  const open = async (namespace: string, isolation: Isolation, quotaBytes = 100 * MiB): Promise<TenantStore> => {
    fx = await makeFixture();
    return fx.backend().open(tenantSpec(namespace, isolation, quotaBytes));
  };

  describe.skipIf(skip).each(ISOLATIONS)('keys and values (%s)', (isolation) => {
    it('should store any valid key, NUL and separators included, and refuse bad keys and values', async () => {
      const app = (await open('kv', isolation)).app('app');
      for (const key of TRICKY_KEYS) await app.set(key, JSON.stringify({ key }));
      for (const key of TRICKY_KEYS) expect(await app.get(key)).toBe(JSON.stringify({ key }));
      expect(await app.get('missing')).toBeUndefined();
      for (const key of ['', 'k'.repeat(513), '\ud800', 42 as never]) {
        await expect(app.set(key, '1')).rejects.toMatchObject({ code: 'invalid_request' });
        await expect(app.get(key)).rejects.toMatchObject({ code: 'invalid_request' });
      }
      await expect(app.set('big', 'x'.repeat(MiB + 1))).rejects.toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('1 MiB') });
      await expect(app.set('k', 7 as never)).rejects.toMatchObject({ code: 'invalid_request' });
      await app.set('max', JSON.stringify('v'.repeat(MiB - 2)));
      expect((await app.get('max'))!.length).toBe(MiB);
      await app.delete('max');
      await app.delete('never-there');
      expect(await app.get('max')).toBeUndefined();
    });
  });

  describe.skipIf(skip).each(ISOLATIONS)('list (%s)', (isolation) => {
    it('should answer many reads at once, each with its own key (PostgreSQL carries the waiting ones in one statement)', async () => {
      const app = (await open('reads', isolation)).app('app');
      for (const key of TRICKY_KEYS) await app.set(key, JSON.stringify({ key }));
      const keys = [...TRICKY_KEYS, 'missing', ...TRICKY_KEYS, 'also missing', TRICKY_KEYS[0]!];
      const values = await Promise.all(keys.map((key) => app.get(key)));
      expect(values).toEqual(keys.map((key) => (key.includes('missing') ? undefined : JSON.stringify({ key }))));
      // A read asked for after a write was acknowledged sees it, however many reads wait.
      const racing = Promise.all(TRICKY_KEYS.map((key) => app.get(key)));
      await app.set('a', '"new"');
      expect(await app.get('a')).toBe('"new"');
      await racing;
    });

    it('should list in UTF-8 byte order, page by cursor without gaps, and stop at the prefix', async () => {
      const app = (await open('lister', isolation)).app('app');
      await app.batch(TRICKY_KEYS.map((key) => ({ op: 'set' as const, key, value: '1' })));
      const expected = [...TRICKY_KEYS].sort(byteOrder);
      expect((await listAll(app)).map(([k]) => k)).toEqual(expected);
      expect((await listAll(app, '', 3)).map(([k]) => k)).toEqual(expected);
      expect((await listAll(app, '\u0000', 1)).map(([k]) => k)).toEqual(['\u0000', '\u0000\u0000']);
      expect((await listAll(app, 'a', 1)).map(([k]) => k)).toEqual(['a', 'a!b']);
      expect(await listAll(app, '\u{10ffff}')).toEqual([['\u{10ffff}', '1']]);
      expect(await listAll(app, 'zz')).toEqual([]);
      const first = await app.list({ prefix: '', limit: 2 });
      expect(first.cursor).toBe(encodeCursor(first.entries[1].key));
      expect(decodeCursor(first.cursor, '')).toBe(expected[1]);
      const last = await app.list({ prefix: '', limit: expected.length });
      expect(last.cursor).toBeNull();
    });

    it('should page through > 1000 keys and refuse bad limits and cursors', async () => {
      const app = (await open('many', isolation)).app('app');
      const key = (i: number) => `item:${String(i).padStart(5, '0')}`;
      for (let start = 0; start < 2100; start += 1000) {
        await app.batch(Array.from({ length: Math.min(1000, 2100 - start) }, (_, i) => ({ op: 'set' as const, key: key(start + i), value: String(start + i) })));
      }
      await app.set('item', '"no colon"');
      const pages: number[] = [];
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await app.list({ prefix: 'item:', limit: 1000, cursor });
        pages.push(page.entries.length);
        seen.push(...page.entries.map((e) => e.key));
        cursor = page.cursor ?? undefined;
      } while (cursor !== undefined);
      expect(pages).toEqual([1000, 1000, 100]);
      expect(seen).toEqual(Array.from({ length: 2100 }, (_, i) => key(i)));
      for (const limit of [0, 1001, 1.5]) await expect(app.list({ prefix: '', limit })).rejects.toMatchObject({ code: 'invalid_request' });
      for (const bad of ['', '!!!', encodeCursor('x'.repeat(513))]) await expect(app.list({ prefix: '', limit: 1, cursor: bad })).rejects.toMatchObject({ code: 'invalid_request' });
      await expect(app.list({ prefix: 'zzz', limit: 1, cursor: encodeCursor('item:00001') })).rejects.toMatchObject({ code: 'invalid_request' });
    });

    it('should end a page once it holds 8 MiB, with a cursor to the rest', async () => {
      const app = (await open('pages', isolation)).app('app');
      const value = JSON.stringify('x'.repeat(MiB - 10));
      for (let i = 0; i < 10; i++) await app.set(`k${i}`, value);
      const first = await app.list({ prefix: 'k', limit: 1000 });
      expect(first.entries.map((e) => e.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8']);
      expect(first.entries[8].value).toBe(value);
      const rest = await app.list({ prefix: 'k', limit: 1000, cursor: first.cursor! });
      expect(rest.entries.map((e) => e.key)).toEqual(['k9']);
      expect(rest.cursor).toBeNull();
    });
  });

  describe.skipIf(skip).each(ISOLATIONS)('batch (%s)', (isolation) => {
    it('should apply all ops in order, or none when one is invalid', async () => {
      const app = (await open('batcher', isolation)).app('app');
      await app.set('gone', '1');
      await app.batch([
        { op: 'set', key: 'a', value: '1' },
        { op: 'set', key: 'a', value: '2' },
        { op: 'delete', key: 'gone' },
        { op: 'set', key: 'b', value: '{"x":[1]}' },
        { op: 'delete', key: 'never-there' },
      ]);
      expect(await listAll(app)).toEqual([['a', '2'], ['b', '{"x":[1]}']]);
      for (const bad of [{ op: 'set', key: '', value: '1' }, { op: 'put', key: 'k', value: '1' }, { op: 'set', key: 'k', value: 'x'.repeat(MiB + 1) }, null]) {
        await expect(app.batch([{ op: 'set', key: 'ok', value: '1' }, bad as never])).rejects.toMatchObject({ code: expect.stringMatching(/invalid_request|payload_too_large/) });
      }
      const many = Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => ({ op: 'set' as const, key: `k${i}`, value: '1' }));
      await expect(app.batch(many)).rejects.toMatchObject({ code: 'invalid_request' });
      const big = Array.from({ length: 9 }, (_, i) => ({ op: 'set' as const, key: `k${i}`, value: JSON.stringify('x'.repeat(MiB - 10)) }));
      await expect(app.batch(big)).rejects.toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('8 MiB') });
      await app.batch([]);
      expect(await listAll(app)).toEqual([['a', '2'], ['b', '{"x":[1]}']]);
    });
  });

  describe.skipIf(skip).each(ISOLATIONS)('quota (%s)', (isolation) => {
    const quota = 10_000;

    it('should refuse the write that passes the quota, count platform records, and free space on delete', async () => {
      const tenant = await open('q', isolation, quota);
      const [one, two] = [tenant.app('one'), tenant.app('two')];
      const value = JSON.stringify('v'.repeat(990)); // 992 bytes + 8-byte key = 1000
      for (let i = 0; i < 5; i++) await one.set(`key-000${i}`, value);
      for (let i = 5; i < 10; i++) await two.set(`key-000${i}`, value);
      expect(tenant.usageBytes()).toBe(quota);
      await expect(one.set('x', '1')).rejects.toMatchObject({ code: 'resource_exhausted', message: `storage quota exceeded (storage_mb): ${quota} of ${quota} bytes used; this write needs 2 more` });
      await expect(two.batch([{ op: 'set', key: 'y', value: '2' }])).rejects.toMatchObject({ code: 'resource_exhausted' });
      await one.set('key-0000', value); // same size: no new space needed
      await expect(one.set('key-0000', value + ' ')).rejects.toMatchObject({ code: 'resource_exhausted' });
      await expect(tenant.system().set('bundle', JSON.stringify('b'.repeat(50_000)))).rejects.toMatchObject({ code: 'resource_exhausted' });
      expect(await one.get('x')).toBeUndefined();
      expect(tenant.usageBytes()).toBe(quota);
      await two.delete('key-0009');
      expect(tenant.usageBytes()).toBe(quota - 1000);
      // A batch is charged its net change.
      await one.batch([{ op: 'delete', key: 'key-0000' }, { op: 'set', key: 'key-0000', value: '"small"' }]);
      expect(tenant.usageBytes()).toBe(quota - 2000 + size('key-0000', '"small"'));
      // A lower quota refuses growth but keeps what is stored; a higher one lets it in.
      tenant.setQuotaBytes(100);
      await expect(one.set('z', '1')).rejects.toMatchObject({ code: 'resource_exhausted' });
      expect(await one.get('key-0001')).toBe(value);
      tenant.setQuotaBytes(quota * 2);
      await one.set('z', '1');
      expect(() => tenant.setQuotaBytes(-1)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    });

    it('should never let concurrent writes overshoot, and keep the counter exact', async () => {
      const tenant = await open('race', isolation, 5000);
      const app = tenant.app('app');
      const value = JSON.stringify('v'.repeat(995)); // 1000 bytes with a 3-byte key
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => app.set(`k${String(i).padStart(2, '0')}`, value)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      expect(tenant.usageBytes()).toBe(5000);
      tenant.setQuotaBytes(1_000_000);
      await Promise.all([...Array.from({ length: 30 }, (_, i) => app.set('same', JSON.stringify('x'.repeat(i)))), app.delete('same')]);
      const stored = await app.get('same');
      expect(tenant.usageBytes()).toBe(5000 + (stored === undefined ? 0 : size('same', stored)));
    });

    it('should read the same usage in a fresh backend, acknowledged writes included', async () => {
      fx = await makeFixture();
      const first = fx.backend();
      const tenant = await first.open(tenantSpec('q', isolation, quota));
      await tenant.app('one').set('é!', '"ü"');
      await tenant.app('two').batch([{ op: 'set', key: 'a', value: '[1,2]' }, { op: 'set', key: 'b', value: 'null' }]);
      await tenant.app('two').delete('b');
      await tenant.system().set('bundle:s', '"counted"');
      const usage = tenant.usageBytes();
      expect(usage).toBe(size('é!', '"ü"') + size('a', '[1,2]') + size('bundle:s', '"counted"'));
      await first.close();
      const reopened = await fx.backend().open(tenantSpec('q', isolation, quota));
      expect(reopened.usageBytes()).toBe(usage);
      expect(await reopened.app('one').get('é!')).toBe('"ü"');
      expect(await reopened.system().get('bundle:s')).toBe('"counted"');
    });
  });

  describe.skipIf(skip).each(ISOLATIONS)('system records and export (%s)', (isolation) => {
    it('should keep system records apart from apps and out of the export, apps in order', async () => {
      const tenant = await open('exp', isolation);
      await tenant.app('notes').set('../b', '"n"');
      await tenant.app('notes').set('a!b', '1');
      await tenant.app('notes-2').set('\u0000', '[true]');
      await tenant.app('a').set('x', '"app a"');
      await tenant.system().set('x', '"system"');
      expect(await tenant.system().get('x')).toBe('"system"');
      expect(await tenant.app('a').get('x')).toBe('"app a"');
      expect(await tenant.app('s').get('x')).toBeUndefined();
      expect(await listAll(tenant.system())).toEqual([['x', '"system"']]);
      expect(await exported(tenant)).toEqual([
        { app: 'a', key: 'x', value: '"app a"' },
        { app: 'notes', key: '../b', value: '"n"' },
        { app: 'notes', key: 'a!b', value: '1' },
        { app: 'notes-2', key: '\u0000', value: '[true]' },
      ]);
      for (const bad of ['', 'A', 'a!b', 'x'.repeat(64)]) expect(() => tenant.app(bad)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    });
  });

  describe.skipIf(skip).each(PAIRS)('isolation and purge: tenant A (%s), tenant B (%s)', (isolationA, isolationB) => {
    it('should keep same-named apps of two tenants apart, and purge one without touching the other', async () => {
      fx = await makeFixture();
      const backend = fx.backend();
      const a = await backend.open(tenantSpec('tenant-a', isolationA));
      const b = await backend.open(tenantSpec('tenant-b', isolationB));
      for (const key of TRICKY_KEYS) await a.app('notes').set(key, '"A"');
      await a.system().set('bundle', '"code of A"');
      for (const key of TRICKY_KEYS) expect(await b.app('notes').get(key)).toBeUndefined();
      expect(await listAll(b.app('notes'))).toEqual([]);
      expect(await b.system().get('bundle')).toBeUndefined();
      await b.app('notes').set('../b', '"B"');
      await b.system().set('bundle', '"code of B"');
      await a.app('notes').delete('../b');
      expect(await b.app('notes').get('../b')).toBe('"B"');
      const bUsage = b.usageBytes();

      await a.purge();
      expect(await exported(a)).toEqual([]);
      expect(a.usageBytes()).toBe(0);
      expect(await a.system().get('bundle')).toBeUndefined();
      expect(await exported(b)).toEqual([{ app: 'notes', key: '../b', value: '"B"' }]);
      expect(await b.system().get('bundle')).toBe('"code of B"');
      expect(b.usageBytes()).toBe(bUsage);

      // The purged store keeps working, and the purge holds in a fresh backend.
      await a.app('notes').set('fresh', '1');
      await backend.close();
      const again = fx.backend();
      expect(await exported(await again.open(tenantSpec('tenant-a', isolationA)))).toEqual([{ app: 'notes', key: 'fresh', value: '1' }]);
      expect(await exported(await again.open(tenantSpec('tenant-b', isolationB)))).toEqual([{ app: 'notes', key: '../b', value: '"B"' }]);
    });
  });

  describe.skipIf(skip)('backend', () => {
    it('should answer check(), refuse a second isolation for one namespace, and refuse use after close', async () => {
      fx = await makeFixture();
      const backend = fx.backend();
      await backend.open(tenantSpec('one', 'schema'));
      await backend.check();
      await expect(backend.open(tenantSpec('one', 'database'))).rejects.toMatchObject({ code: 'invalid_request' });
      await expect(backend.open(tenantSpec('Bad!', 'schema'))).rejects.toMatchObject({ code: 'invalid_request' });
      await backend.close();
      await expect(backend.open(tenantSpec('two', 'schema'))).rejects.toMatchObject({ code: 'unavailable' });
      await expect(backend.check()).rejects.toMatchObject({ code: 'unavailable' });
    });
  });
});
