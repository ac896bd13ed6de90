import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TenantStore } from '../../src/storage/backend.ts';
import { listAll, storageFixture, tenantSpec, type Isolation } from '../helpers/storage-backend.ts';

let fx: Awaited<ReturnType<typeof storageFixture>>;
afterEach(() => fx.dispose());

async function exported(tenant: TenantStore) {
  const out = [];
  for await (const entry of tenant.exportEntries()) out.push(entry);
  return out;
}

async function seed(tenant: TenantStore, tag: string): Promise<void> {
  await tenant.app('notes').set('../b', JSON.stringify(tag));
  await tenant.app('notes').set('a!b', '1');
  await tenant.app('notes-2').set('\u0000', '[true]');
  await tenant.system().set('bundle:notes', JSON.stringify(`code of ${tag}`));
}

describe.each(['schema', 'database'] as const)('export (%s)', (isolation) => {
  it('should yield every app entry, app by app in key order, and no system record', async () => {
    fx = await storageFixture();
    const backend = fx.backend();
    const tenant = await backend.open(tenantSpec('exp', isolation));
    await seed(tenant, 'exp');
    await seed(await backend.open(tenantSpec('neighbour', 'schema')), 'neighbour');
    expect(await exported(tenant)).toEqual([
      { app: 'notes', key: '../b', value: '"exp"' },
      { app: 'notes', key: 'a!b', value: '1' },
      { app: 'notes-2', key: '\u0000', value: '[true]' },
    ]);
  });
});

const PAIRS: [Isolation, Isolation][] = [['schema', 'schema'], ['database', 'database'], ['schema', 'database'], ['database', 'schema']];

describe.each(PAIRS)('purge of a %s tenant next to a %s tenant', (isolationA, isolationB) => {
  it('should delete the purged tenant\'s data and nothing else', async () => {
    fx = await storageFixture();
    const backend = fx.backend();
    const a = await backend.open(tenantSpec('purged', isolationA));
    const b = await backend.open(tenantSpec('kept', isolationB));
    const c = await backend.open(tenantSpec('kept-too', isolationA));
    for (const [t, tag] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) await seed(t, tag);
    const before = { b: await exported(b), c: await exported(c), bUsage: b.usageBytes() };

    await a.purge();

    expect(await exported(a)).toEqual([]);
    expect(a.usageBytes()).toBe(0);
    expect(await a.system().get('bundle:notes')).toBeUndefined();
    expect(await exported(b)).toEqual(before.b);
    expect(await exported(c)).toEqual(before.c);
    expect(b.usageBytes()).toBe(before.bUsage);
    expect(await b.system().get('bundle:notes')).toBe('"code of b"');

    // The purged store keeps working, and the purge survives a reopen.
    await a.app('notes').set('fresh', '1');
    expect(await listAll(a.app('notes'))).toEqual([['fresh', '1']]);
    await backend.close();
    const again = fx.backend();
    const reopened = await again.open(tenantSpec('purged', isolationA));
    expect(await exported(reopened)).toEqual([{ app: 'notes', key: 'fresh', value: '1' }]);
    expect(await exported(await again.open(tenantSpec('kept', isolationB)))).toEqual(before.b);
  });
});

describe('purge of a database tenant', () => {
  it('should remove only its own directory contents', async () => {
    fx = await storageFixture();
    const backend = fx.backend();
    const a = await backend.open(tenantSpec('own-a', 'database'));
    const b = await backend.open(tenantSpec('own-b', 'database'));
    await seed(a, 'a');
    await seed(b, 'b');
    await a.purge();
    expect((await readdir(join(fx.dataDir, 'tenants'))).sort()).toEqual(['own-a', 'own-b']);
    expect(await exported(b)).toHaveLength(3);
  });

  it('should let writes racing a purge land either before (wiped) or after it', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('race', 'database'));
    const app = tenant.app('app');
    const writes = Array.from({ length: 20 }, (_, i) => app.set(`k${i}`, String(i)));
    const purge = tenant.purge();
    const late = app.set('late', '1');
    await Promise.all([...writes, purge, late]);
    expect(await listAll(app)).toEqual([['late', '1']]);
    expect(tenant.usageBytes()).toBe(5);
  });
});
