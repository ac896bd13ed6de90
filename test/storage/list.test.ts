import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppStore } from '../../src/storage/backend.ts';
import { decodeCursor, encodeCursor } from '../../src/storage/key-codec.ts';
import { listAll, storageFixture, tenantSpec } from '../helpers/storage-backend.ts';

const key = (i: number) => `item:${String(i).padStart(5, '0')}`;

describe.each(['schema', 'database'] as const)('list (%s)', (isolation) => {
  let fx: Awaited<ReturnType<typeof storageFixture>>;
  let store: AppStore;

  beforeAll(async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('lister', isolation));
    store = tenant.app('app');
    // 2500 keys in 3 batches, plus neighbours that a prefix must exclude.
    for (let start = 0; start < 2500; start += 1000) {
      const ops = [];
      for (let i = start; i < Math.min(start + 1000, 2500); i++) ops.push({ op: 'set' as const, key: key(i), value: String(i) });
      await store.batch(ops);
    }
    await store.batch([
      { op: 'set', key: 'item', value: '"no colon"' },
      { op: 'set', key: 'item;', value: '"after colon"' },
      { op: 'set', key: 'iteM:1', value: '"case"' },
    ]);
    await tenant.app('other').set('item:99999', '"other app"');
  });
  afterAll(() => fx.dispose());

  it('should page through > 1000 keys with the cursor, in order, without gaps or repeats', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.list({ prefix: 'item:', limit: 1000, cursor });
      expect(page.entries.length).toBeLessThanOrEqual(1000);
      seen.push(...page.entries.map((e) => e.key));
      cursor = page.cursor ?? undefined;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 2500 }, (_, i) => key(i)));
  });

  it('should return cursor null exactly on the last page', async () => {
    const first = await store.list({ prefix: 'item:0249', limit: 10 });
    expect(first.entries.map((e) => e.key)).toEqual(Array.from({ length: 10 }, (_, i) => key(2490 + i)));
    expect(first.cursor).toBeNull();
    const partial = await store.list({ prefix: 'item:0249', limit: 9 });
    expect(partial.cursor).not.toBeNull();
    const rest = await store.list({ prefix: 'item:0249', limit: 9, cursor: partial.cursor! });
    expect(rest.entries.map((e) => e.key)).toEqual([key(2499)]);
    expect(rest.cursor).toBeNull();
  });

  it('should list only keys with the prefix, values as stored JSON text', async () => {
    const page = await store.list({ prefix: 'item:0000', limit: 100 });
    expect(page.entries).toEqual(Array.from({ length: 10 }, (_, i) => ({ key: key(i), value: String(i) })));
    expect((await store.list({ prefix: 'item', limit: 2 })).entries.map((e) => e.key)).toEqual(['item', 'item:00000']);
    expect((await listAll(store, 'item;'))).toEqual([['item;', '"after colon"']]);
    expect((await store.list({ prefix: 'zzz', limit: 5 })).entries).toEqual([]);
    expect((await listAll(store)).length).toBe(2503);
  });

  it('should refuse limits outside 1..1000', async () => {
    for (const limit of [0, -1, 1001, 1.5, Number.NaN, Infinity]) {
      await expect(store.list({ prefix: '', limit })).rejects.toMatchObject({ code: 'invalid_request' });
    }
    expect((await store.list({ prefix: '', limit: 1 })).entries).toHaveLength(1);
  });

  it('should refuse malformed cursors with invalid_request', async () => {
    const good = encodeCursor('item:00001');
    for (const cursor of ['', '!!!', 'a b', 'x'.repeat(2000), good + '=', '_w', Buffer.from([0xff, 0xfe]).toString('base64url'), encodeCursor('x'.repeat(513))]) {
      await expect(store.list({ prefix: '', limit: 10, cursor })).rejects.toMatchObject({ code: 'invalid_request' });
    }
    // A cursor from another prefix would start the scan outside it.
    await expect(store.list({ prefix: 'zzz', limit: 10, cursor: good })).rejects.toMatchObject({ code: 'invalid_request' });
    expect((await store.list({ prefix: 'item:', limit: 1, cursor: good })).entries[0].key).toBe(key(2));
  });
});

describe('cursor codec', () => {
  it('should round-trip any valid key, including NUL, "!" and astral characters', () => {
    for (const k of ['a', '\u0000', '!a!', '\u{10ffff}x', 'é'.repeat(256)]) expect(decodeCursor(encodeCursor(k), '')).toBe(k);
  });
});
