/**
 * THREATS §C(18): keys like `../b`, NUL, the sublevel separator `!` and full-range
 * scans only ever reach the app's own keys, across tenants (every isolation pair)
 * and across apps of one tenant.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppStore } from '../../src/storage/backend.ts';
import { listAll, storageFixture, tenantSpec, type Isolation } from '../helpers/storage-backend.ts';

const TRICKY_KEYS = [
  '../b', '../../etc/passwd', 'a!b', '\u0000', '\u0000\u0000', '!a!', '!', '!!', '!!a!!b!', '"', '#',
  'a', '~', '\u007f', '\uffff', '\u{10ffff}', 'k\u0000!a!!notes!x', 'x'.repeat(512),
];
const PROBE_PREFIXES = ['', '\uffff', '\u0000', 'a', '!', '!a!', '..', '"', '\u{10ffff}'];

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const valueOf = (key: string) => JSON.stringify({ owner: 'A', key });

async function writeAll(store: AppStore): Promise<void> {
  for (const key of TRICKY_KEYS) await store.set(key, valueOf(key));
}

/** `store` sees none of the tricky keys: get, every probe prefix and a full scan. */
async function expectSeesNothing(store: AppStore): Promise<void> {
  for (const key of TRICKY_KEYS) expect(await store.get(key)).toBeUndefined();
  for (const prefix of PROBE_PREFIXES) {
    expect((await store.list({ prefix, limit: 1000 })).entries).toEqual([]);
  }
  expect(await listAll(store)).toEqual([]);
}

/** `store` sees exactly the tricky keys, in byte order, with A's values. */
async function expectSeesExactly(store: AppStore): Promise<void> {
  const expected = [...TRICKY_KEYS].sort(byteOrder).map((k) => [k, valueOf(k)]);
  expect(await listAll(store)).toEqual(expected);
  expect(await listAll(store, '', 3)).toEqual(expected);
  for (const key of TRICKY_KEYS) expect(await store.get(key)).toBe(valueOf(key));
}

const PAIRS: [Isolation, Isolation][] = [
  ['schema', 'schema'],
  ['database', 'database'],
  ['schema', 'database'],
  ['database', 'schema'],
];

describe.each(PAIRS)('tenant A (%s) and tenant B (%s), same app id', (isolationA, isolationB) => {
  let fx: Awaited<ReturnType<typeof storageFixture>>;
  let a: AppStore;
  let b: AppStore;

  beforeEach(async () => {
    fx = await storageFixture();
    const backend = fx.backend();
    a = (await backend.open(tenantSpec('tenant-a', isolationA))).app('notes');
    b = (await backend.open(tenantSpec('tenant-b', isolationB))).app('notes');
    await writeAll(a);
  });
  afterEach(() => fx.dispose());

  it('should not let B get or list what A wrote', async () => {
    await expectSeesNothing(b);
    await expectSeesExactly(a);
  });

  it('should not let B overwrite or delete A\'s keys', async () => {
    for (const key of TRICKY_KEYS) {
      await b.set(key, '"from B"');
      await b.batch([{ op: 'set', key, value: '"batch B"' }]);
    }
    for (const key of TRICKY_KEYS) await b.delete(key);
    await b.batch(TRICKY_KEYS.map((key) => ({ op: 'delete' as const, key })));
    await expectSeesExactly(a);
    await expectSeesNothing(b);
  });

  it('should not let A\'s deletes touch B', async () => {
    await b.set('../b', '"B"');
    await a.delete('../b');
    expect(await b.get('../b')).toBe('"B"');
    expect(await a.get('../b')).toBeUndefined();
  });
});

describe.each(['schema', 'database'] as const)('apps inside one tenant (%s)', (isolation) => {
  let fx: Awaited<ReturnType<typeof storageFixture>>;
  afterEach(() => fx.dispose());

  it('should keep apps and system records apart', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('solo', isolation));
    const notes = tenant.app('notes');
    await writeAll(notes);
    // 'note' is a prefix of 'notes', 'notes-2' extends it, 'a' and 's' name the internal sublevels.
    for (const other of ['note', 'notes-2', 'a', 's', 'n']) await expectSeesNothing(tenant.app(other));
    await expectSeesNothing(tenant.system());
    await expectSeesExactly(notes);

    await tenant.system().set('!a!!notes!../b', '"system"');
    await tenant.app('a').set('!notes!../b', '"app a"');
    expect(await notes.get('../b')).toBe(valueOf('../b'));
    await expectSeesExactly(notes);
  });

  it('should refuse app ids outside [a-z0-9-]{1,63}', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('solo', isolation));
    for (const bad of ['', 'A', 'a!b', '../x', 'a b', 'x'.repeat(64), '\u0000']) {
      expect(() => tenant.app(bad)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
  });
});
