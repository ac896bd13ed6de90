import { afterEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_OPS } from '../../src/storage/key-codec.ts';
import { listAll, MiB, storageFixture, tenantSpec } from '../helpers/storage-backend.ts';

let fx: Awaited<ReturnType<typeof storageFixture>>;
afterEach(() => fx.dispose());

/** Entry size as the quota counts it: UTF-8 bytes of key + value. */
const size = (key: string, value: string) => Buffer.byteLength(key) + Buffer.byteLength(value);

describe.each(['schema', 'database'] as const)('batch (%s)', (isolation) => {
  it('should apply all ops of a batch, in order', async () => {
    fx = await storageFixture();
    const app = (await fx.backend().open(tenantSpec('t', isolation))).app('app');
    await app.set('gone', '1');
    await app.batch([
      { op: 'set', key: 'a', value: '1' },
      { op: 'set', key: 'a', value: '2' },
      { op: 'delete', key: 'gone' },
      { op: 'set', key: 'b', value: '{"x":[1]}' },
      { op: 'delete', key: 'never-there' },
    ]);
    expect(await listAll(app)).toEqual([['a', '2'], ['b', '{"x":[1]}']]);
  });

  it('should write nothing when one op is invalid', async () => {
    fx = await storageFixture();
    const app = (await fx.backend().open(tenantSpec('t', isolation))).app('app');
    const good = { op: 'set' as const, key: 'ok', value: '1' };
    const bad: unknown[] = [
      { op: 'set', key: '', value: '1' },
      { op: 'set', key: 'k'.repeat(513), value: '1' },
      { op: 'set', key: 'k', value: 'x'.repeat(MiB + 1) },
      { op: 'set', key: 'k', value: 42 },
      { op: 'put', key: 'k', value: '1' },
      { op: 'delete', key: '\ud800' },
      null,
    ];
    for (const op of bad) {
      await expect(app.batch([good, op as never])).rejects.toMatchObject({ code: expect.stringMatching(/invalid_request|payload_too_large/) });
    }
    expect(await listAll(app)).toEqual([]);
  });

  it('should refuse more than 1000 ops and more than 8 MiB', async () => {
    fx = await storageFixture();
    const app = (await fx.backend().open(tenantSpec('t', isolation))).app('app');
    const many = Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => ({ op: 'set' as const, key: `k${i}`, value: '1' }));
    await expect(app.batch(many)).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('1000') });
    const big = Array.from({ length: 9 }, (_, i) => ({ op: 'set' as const, key: `k${i}`, value: JSON.stringify('x'.repeat(MiB - 10)) }));
    await expect(app.batch(big)).rejects.toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('8 MiB') });
    expect(await listAll(app)).toEqual([]);
    await app.batch(many.slice(0, MAX_BATCH_OPS));
    expect((await listAll(app)).length).toBe(MAX_BATCH_OPS);
  });
});

describe.each(['schema', 'database'] as const)('quota (%s)', (isolation) => {
  const quota = 10_000;

  it('should refuse the write that would exceed the quota, and free space on delete', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('q', isolation, quota));
    const [one, two] = [tenant.app('one'), tenant.app('two')];
    const value = JSON.stringify('v'.repeat(990)); // 992 bytes + 8-byte key = 1000
    for (let i = 0; i < 5; i++) await one.set(`key-000${i}`, value);
    for (let i = 5; i < 10; i++) await two.set(`key-000${i}`, value);
    expect(tenant.usageBytes()).toBe(quota);

    await expect(one.set('x', '1')).rejects.toMatchObject({ code: 'resource_exhausted' });
    await expect(two.batch([{ op: 'set', key: 'y', value: '2' }])).rejects.toMatchObject({ code: 'resource_exhausted' });
    // Overwriting with a same-size value needs no new space; a larger one does.
    await one.set('key-0000', value);
    await expect(one.set('key-0000', value + ' ')).rejects.toMatchObject({ code: 'resource_exhausted' });
    expect(await one.get('x')).toBeUndefined();
    expect(tenant.usageBytes()).toBe(quota);
    // Platform records (uploaded bundles) count against the same quota (THREATS F47).
    await expect(tenant.system().set('bundle', JSON.stringify('b'.repeat(50_000)))).rejects.toMatchObject({ code: 'resource_exhausted' });
    expect(tenant.usageBytes()).toBe(quota);

    await two.delete('key-0009');
    expect(tenant.usageBytes()).toBe(quota - 1000);
    await one.set('x', '1');
    expect(tenant.usageBytes()).toBe(quota - 1000 + size('x', '1'));
    // A batch is charged its net change: a delete plus a smaller set frees space.
    await one.batch([{ op: 'delete', key: 'key-0000' }, { op: 'set', key: 'key-0000', value: '"small"' }]);
    expect(tenant.usageBytes()).toBe(quota - 2000 + size('x', '1') + size('key-0000', '"small"'));
  });

  it('should recompute usage on reopen', async () => {
    fx = await storageFixture();
    const first = fx.backend();
    const tenant = await first.open(tenantSpec('q', isolation, quota));
    await tenant.app('one').set('é!', '"ü"');
    await tenant.app('two').batch([{ op: 'set', key: 'a', value: '[1,2]' }, { op: 'set', key: 'b', value: 'null' }]);
    await tenant.app('two').delete('b');
    // Platform records (deployed bundles) count too (THREATS F47).
    await tenant.system().set('bundle:s', '"counted"');
    const usage = tenant.usageBytes();
    expect(usage).toBe(size('é!', '"ü"') + size('a', '[1,2]') + size('bundle:s', '"counted"'));
    await first.close();
    const reopened = await fx.backend().open(tenantSpec('q', isolation, quota));
    expect(reopened.usageBytes()).toBe(usage);
  });

  it('should charge platform records against the same quota, in one atomic write', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('q', isolation, quota));
    await tenant.app('app').set('data', JSON.stringify('d'.repeat(3000)));
    const sys = tenant.system();
    const chunk = JSON.stringify('b'.repeat(2000));
    await sys.batch([{ op: 'set', key: 'bundle:1:0', value: chunk }, { op: 'set', key: 'bundle:1', value: '{"chunks":1}' }]);
    const before = tenant.usageBytes();
    expect(before).toBe(size('data', JSON.stringify('d'.repeat(3000))) + size('bundle:1:0', chunk) + size('bundle:1', '{"chunks":1}'));
    // A second bundle of three chunks does not fit: none of its chunks is written.
    const ops = [0, 1, 2].map((i) => ({ op: 'set' as const, key: `bundle:2:${i}`, value: chunk }));
    await expect(sys.batch(ops)).rejects.toMatchObject({ code: 'resource_exhausted', message: expect.stringContaining('storage_mb') });
    expect(await listAll(sys, 'bundle:2')).toEqual([]);
    expect(tenant.usageBytes()).toBe(before);
    // And app data cannot use the room the bundles took.
    await expect(tenant.app('app').set('more', JSON.stringify('m'.repeat(5000)))).rejects.toMatchObject({ code: 'resource_exhausted' });
    // Deleting a platform record gives its bytes back.
    await sys.delete('bundle:1:0');
    expect(tenant.usageBytes()).toBe(before - size('bundle:1:0', chunk));
  });

  it('should keep the counter exact under concurrent writes of one key', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('q', isolation, 1_000_000));
    const app = tenant.app('app');
    const writes = Array.from({ length: 50 }, (_, i) => app.set('same', JSON.stringify('x'.repeat(i))));
    await Promise.all([...writes, app.delete('same'), app.set('other', '1')]);
    const stored = await app.get('same');
    const expected = (stored === undefined ? 0 : size('same', stored)) + size('other', '1');
    expect(tenant.usageBytes()).toBe(expected);
  });

  it('should never let concurrent writes of different keys overshoot the quota', async () => {
    fx = await storageFixture();
    const tenant = await fx.backend().open(tenantSpec('q', isolation, 5000));
    const app = tenant.app('app');
    const value = JSON.stringify('v'.repeat(995)); // 1000 bytes with a 3-byte key
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => app.set(`k${String(i).padStart(2, '0')}`, value)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(tenant.usageBytes()).toBe(5000);
    expect((await listAll(app)).length).toBe(5);
  });
});
