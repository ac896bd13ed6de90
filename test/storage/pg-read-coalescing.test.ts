/**
 * Reads of one PostgreSQL keyspace that arrive while one is in flight wait, and the next
 * statement carries them all (src/storage/postgres/pg-app-store.ts). Here the
 * tenant store is a scripted host, so every statement and its timing is chosen by the test;
 * the same reads against a real server are in engines.test.ts.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { APP_LIMITS } from '../../src/storage/key-codec.ts';
import { PgAppStore, type PgAppStoreHost } from '../../src/storage/postgres/pg-app-store.ts';

interface Sent {
  name: string | undefined;
  keys: string[];
  answer(rows: Record<string, string>): void;
  fail(err: unknown): void;
}

/** A tenant store whose statements wait until the test answers them. */
function scriptedHost(): { host: PgAppStoreHost; sent: Sent[] } {
  const sent: Sent[] = [];
  const host = {
    query(config: pg.QueryConfig) {
      return new Promise((resolve, reject) => {
        const values = config.values as [string, Buffer | Buffer[]];
        const keys = (Array.isArray(values[1]) ? values[1] : [values[1]]).map((k) => k.toString('utf8'));
        sent.push({
          name: config.name,
          keys,
          answer: (rows) => {
            const found = keys.filter((k) => rows[k] !== undefined);
            resolve({ rows: found.map((k) => ({ key: Buffer.from(k), value: Buffer.from(rows[k]!) })) });
          },
          fail: reject,
        });
      });
    },
    quotaBytes: () => 1e9,
    noteUsage() {},
    writeStarted() {},
    writeEnded: async () => {},
  } as unknown as PgAppStoreHost;
  return { host, sent };
}

const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('PostgreSQL reads of one keyspace', () => {
  it('should send a lone read at once, on its own', async () => {
    const { host, sent } = scriptedHost();
    const app = new PgAppStore(host, 'app', APP_LIMITS);
    const read = app.get('a');
    await settled();
    expect(sent.map((s) => [s.name, s.keys])).toEqual([['isohost_get', ['a']]]);
    sent[0]!.answer({ a: '1' });
    expect(await read).toBe('1');
  });

  it('should let one read run, and carry the ones that wait in one statement when it ends', async () => {
    const { host, sent } = scriptedHost();
    const app = new PgAppStore(host, 'app', APP_LIMITS);
    const reads = ['a', 'b', 'c', 'd', 'c', 'missing'].map((k) => app.get(k));
    await settled();
    expect(sent.map((s) => s.keys)).toEqual([['a']]);
    sent[0]!.answer({ a: '1' });
    await settled();
    expect(sent.map((s) => [s.name, s.keys])).toEqual([
      ['isohost_get', ['a']],
      ['isohost_get_many', ['b', 'c', 'd', 'c', 'missing']],
    ]);
    const late = app.get('e');
    await settled();
    expect(sent).toHaveLength(2);
    sent[1]!.answer({ c: '3', d: '4' });
    await settled();
    expect(sent.map((s) => [s.name, s.keys])[2]).toEqual(['isohost_get', ['e']]);
    sent[2]!.answer({ e: '5' });
    expect(await Promise.all([...reads, late])).toEqual(['1', undefined, '3', '4', '3', undefined, '5']);
  });

  it('should fail every read a failed statement carried with its error, and serve the next reads', async () => {
    const { host, sent } = scriptedHost();
    const app = new PgAppStore(host, 'app', APP_LIMITS);
    const reads = ['a', 'b', 'c', 'd'].map((k) => app.get(k).catch((e: unknown) => e));
    await settled();
    const down = new IsohostError('storage_error', 'storage is unavailable');
    sent[0]!.answer({ a: '1' });
    await settled();
    sent[1]!.fail(down);
    expect(await Promise.all(reads)).toEqual(['1', down, down, down]);
    const next = app.get('a');
    await settled();
    sent[2]!.answer({ a: '1' });
    expect(await next).toBe('1');
  });

  it('should carry at most 256 keys in one statement', async () => {
    const { host, sent } = scriptedHost();
    const app = new PgAppStore(host, 'app', APP_LIMITS);
    const reads = Array.from({ length: 1 + 300 }, (_, i) => app.get(`k${i}`));
    await settled();
    sent[0]!.answer({});
    await settled();
    expect(sent.slice(1).map((s) => s.keys.length)).toEqual([256]);
    sent[1]!.answer({});
    await settled();
    expect(sent.slice(1).map((s) => s.keys.length)).toEqual([256, 44]);
    sent[2]!.answer({});
    expect((await Promise.all(reads)).every((v) => v === undefined)).toBe(true);
  });

  it('should refuse a bad key at once, without sending anything', async () => {
    const { host, sent } = scriptedHost();
    const app = new PgAppStore(host, 'app', APP_LIMITS);
    await expect(app.get('')).rejects.toMatchObject({ code: 'invalid_request' });
    expect(sent).toEqual([]);
  });
});
