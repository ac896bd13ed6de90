/**
 * Seed question 1: the same app deployed to two tenants, through fc.storage in real
 * isolates on real LevelDB — what A writes, B cannot get, list, overwrite or delete,
 * for schema/schema, database/database and mixed pairs; two apps inside one tenant
 * are separated the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';

// The isolate's global (test bodies are stringified into bundles; see helpers/bundle.ts).
declare const fc: any;
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

const KEYS = ['k', '../b', 'a!b', '!a!', '\u0000', '\uffff', 'x'.repeat(200)];

const app = bundleOf({
  async writeAll(keys: string[]) {
    for (const k of keys) await fc.storage.set(k, { owner: fc.app.id, k });
    return keys.length;
  },
  async scan() {
    const out: Record<string, unknown[]> = {};
    for (const prefix of ['', '\u0000', '\uffff', 'a', '!', '../', 'k']) {
      const page = await fc.storage.list({ prefix, limit: 1000 });
      out[prefix] = page.entries.map((e: { key: string }) => e.key);
    }
    return out;
  },
  async getAll(keys: string[]) {
    const out: unknown[] = [];
    for (const k of keys) out.push(await fc.storage.get(k));
    return out;
  },
  async overwriteAndDelete(keys: string[]) {
    for (const k of keys) await fc.storage.set(k, 'overwritten');
    for (const k of keys) await fc.storage.delete(k);
    await fc.storage.batch(keys.map((key) => ({ op: 'delete', key })));
    return true;
  },
});

const pairs = [
  ['schema', 'schema'],
  ['database', 'database'],
  ['schema', 'database'],
] as const;

describe.each(pairs)('tenants A (%s) and B (%s) running the same app', (isoA, isoB) => {
  let p: Awaited<ReturnType<typeof startTestPlatform>>;
  beforeAll(async () => {
    p = await startTestPlatform([
      { id: 'tenant-a', isolation: isoA },
      { id: 'tenant-b', isolation: isoB },
    ]);
    expect(await callOnce(p, 'tenant-a', 'shared-app', app, 'writeAll', KEYS)).toBe(KEYS.length);
    expect(await callOnce(p, 'tenant-a', 'other-app', app, 'writeAll', ['only-other'])).toBe(1);
  });
  afterAll(() => p.dispose());

  it('should let A read back exactly its own keys', async () => {
    const got = await callOnce(p, 'tenant-a', 'shared-app', app, 'getAll', KEYS);
    expect(got).toEqual(KEYS.map((k) => ({ owner: 'shared-app', k })));
    const scan = await callOnce(p, 'tenant-a', 'shared-app', app, 'scan');
    expect([...scan['']].sort()).toEqual([...KEYS].sort());
  });

  it('should show B nothing of A: get, and list over every prefix', async () => {
    expect(await callOnce(p, 'tenant-b', 'shared-app', app, 'getAll', KEYS)).toEqual(KEYS.map(() => null));
    const scan = await callOnce(p, 'tenant-b', 'shared-app', app, 'scan');
    for (const keys of Object.values(scan)) expect(keys).toEqual([]);
  });

  it('should not let B overwrite or delete A', async () => {
    await callOnce(p, 'tenant-b', 'shared-app', app, 'overwriteAndDelete', KEYS);
    const got = await callOnce(p, 'tenant-a', 'shared-app', app, 'getAll', KEYS);
    expect(got).toEqual(KEYS.map((k) => ({ owner: 'shared-app', k })));
  });

  it('should separate two apps inside one tenant the same way', async () => {
    const scanOther = await callOnce(p, 'tenant-a', 'other-app', app, 'scan');
    expect(scanOther['']).toEqual(['only-other']);
    expect(await callOnce(p, 'tenant-a', 'other-app', app, 'getAll', KEYS)).toEqual(KEYS.map(() => null));
    const scanShared = await callOnce(p, 'tenant-a', 'shared-app', app, 'scan');
    expect(scanShared['']).not.toContain('only-other');
  });
});
