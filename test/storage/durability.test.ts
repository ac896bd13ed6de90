/**
 * THREATS §E 36-38: a SIGKILL during a write loop loses no acknowledged write, a
 * crash mid-batch leaves each batch all or nothing, and a second process opening
 * the same store gets a coded error without damage.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnWriter, type WriterChild } from '../helpers/storage-child.ts';
import { listAll, storageFixture, tenantSpec } from '../helpers/storage-backend.ts';

let fx: Awaited<ReturnType<typeof storageFixture>>;
let children: WriterChild[] = [];
afterEach(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  children = [];
  await fx.dispose();
});

function writer(...args: Parameters<typeof spawnWriter>): WriterChild {
  const child = spawnWriter(...args);
  children.push(child);
  return child;
}

async function killAfter(child: WriterChild, acknowledged: number): Promise<string[]> {
  await child.until((lines) => lines.length >= acknowledged);
  child.child.kill('SIGKILL');
  await child.exited;
  return [...child.lines];
}

describe.each(['schema', 'database'] as const)('durability (%s)', (isolation) => {
  it('should keep every acknowledged set after SIGKILL', async () => {
    fx = await storageFixture();
    const acked = await killAfter(writer('set', fx.dataDir, isolation), 200);
    expect(acked.length).toBeGreaterThanOrEqual(200);
    const app = (await fx.backend().open(tenantSpec('durable', isolation))).app('writer');
    const stored = new Map(await listAll(app));
    for (const key of acked) expect(stored.get(key), key).toBe(JSON.stringify({ i: Number(key.slice(1)) }));
  });

  it('should keep every acknowledged batch after SIGKILL, and no partial batch', async () => {
    fx = await storageFixture();
    const acked = await killAfter(writer('batch', fx.dataDir, isolation), 60);
    const tenant = await fx.backend().open(tenantSpec('durable', isolation));
    const byBatch = new Map<string, number>();
    for (const [key] of await listAll(tenant.app('writer'))) {
      const batch = key.split(':')[0];
      byBatch.set(batch, (byBatch.get(batch) ?? 0) + 1);
    }
    for (const batch of acked) expect(byBatch.get(batch), batch).toBe(50);
    for (const [batch, count] of byBatch) expect(count, batch).toBe(50);
    // The usage counter, recomputed at open, matches what survived.
    expect(tenant.usageBytes()).toBeGreaterThan(0);
  });

  it('should give a second process a coded storage_error, without damage', async () => {
    fx = await storageFixture();
    const holder = writer('hold', fx.dataDir, isolation);
    await holder.until((lines) => lines.includes('ready'));

    // This process is the second opener.
    await expect(fx.backend().open(tenantSpec('durable', isolation))).rejects.toMatchObject({
      code: 'storage_error',
      message: expect.stringContaining('locked'),
    });
    holder.child.kill('SIGKILL');
    await holder.exited;

    // Now this process holds the store and a child is the second opener.
    const backend = fx.backend();
    const tenant = await backend.open(tenantSpec('durable', isolation));
    await tenant.app('writer').set('mine', '1');
    const opener = writer('open', fx.dataDir, isolation);
    await opener.until((lines) => lines.length >= 1);
    const error = JSON.parse(opener.lines[0]);
    expect(error.code).toBe('storage_error');
    expect(error.message).toMatch(/locked/);
    expect(error.message).not.toContain(fx.dataDir);
    expect(error.message).not.toContain('durable');
    expect(await tenant.app('writer').get('mine')).toBe('1');
  });
});
