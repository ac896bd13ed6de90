/**
 * Issue 13: PostgreSQL restarted under a live isohost. While it is down every operation
 * fails with a coded storage_error (no hang, no crash); once it is back the same backend,
 * and the same platform, work again without being re-created. An immediate stop (no
 * checkpoint: a crash as far as the data is concerned) loses no acknowledged write, and
 * neither does a writer process killed with SIGKILL (a node's kill -9) mid-write.
 */
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import { openPlatform } from '../../src/platform.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, testConfigObject } from '../helpers/platform.ts';
import { postgresAvailable, postgresFixture, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { spawnLineChild } from '../helpers/child-lines.ts';
import { listAll, tenantSpec } from '../helpers/storage-backend.ts';
import { tempDir } from '../helpers/tmp.ts';

// Declared here, not imported: guest code must name the isolate's own `fc`.
declare const fc: any;

const WRITER = fileURLToPath(new URL('./fixtures/storage-writer.ts', import.meta.url));

vi.setConfig({ testTimeout: 120_000 });
const binaries = await postgresAvailable();
let server: PostgresServer;
beforeAll(async () => {
  if (binaries !== null) server = await startPostgres(binaries);
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe.skipIf(binaries === null)('PostgreSQL restarted under a live backend', () => {
  it('should fail with storage_error while it is down and work again after, on the same backend', async () => {
    const fx = await postgresFixture(server);
    const backend = fx.backend();
    const schema = await backend.open(tenantSpec('s', 'schema'));
    const database = await backend.open(tenantSpec('d', 'database'));
    for (const store of [schema, database]) await store.app('a').set('before', '1');

    await server.stopServer();
    for (const store of [schema, database]) {
      const app = store.app('a');
      await expect(app.get('before')).rejects.toMatchObject({ code: 'storage_error' });
      await expect(app.set('during', '1')).rejects.toMatchObject({ code: 'storage_error' });
      await expect(app.batch([{ op: 'delete', key: 'before' }])).rejects.toMatchObject({ code: 'storage_error' });
      await expect(app.list({ prefix: '', limit: 10 })).rejects.toMatchObject({ code: 'storage_error' });
      await expect(store.system().get('x')).rejects.toMatchObject({ code: 'storage_error' });
    }
    await expect(backend.check()).rejects.toMatchObject({ code: 'storage_error', message: expect.not.stringContaining('127.0.0.1') });
    await server.start();

    await backend.check();
    for (const store of [schema, database]) {
      const app = store.app('a');
      expect(await app.get('before')).toBe('1');
      await app.set('after', '2');
      expect(await listAll(app)).toEqual([['after', '2'], ['before', '1']]);
    }
    await fx.dispose();
  });

  it('should keep every acknowledged write across an immediate stop', async () => {
    const fx = await postgresFixture(server);
    const backend = fx.backend();
    const store = await backend.open(tenantSpec('crash', 'schema'));
    const app = store.app('a');
    // Writes in flight when the server goes down: the acknowledged ones must all be there after.
    const acked: string[] = [];
    const writing = (async () => {
      for (let i = 0; ; i++) {
        const key = `k${String(i).padStart(5, '0')}`;
        try {
          await app.set(key, String(i));
        } catch {
          return;
        }
        acked.push(key);
      }
    })();
    while (acked.length < 50) await new Promise((r) => setTimeout(r, 20));
    await server.stopServer('immediate');
    await writing;
    await server.start();
    const stored = new Map(await listAll(app));
    expect(acked.length).toBeGreaterThanOrEqual(50);
    for (const key of acked) expect(stored.get(key), key).toBe(String(Number(key.slice(1))));
    await fx.dispose();
  });

  it('should keep every acknowledged write and batch of a writer process killed with SIGKILL, and no partial batch', async () => {
    const fx = await postgresFixture(server);
    for (const [mode, isolation] of [['set', 'schema'], ['batch', 'database']] as const) {
      const child = spawnLineChild('storage-writer', WRITER, [mode, fx.url, isolation]);
      await child.until((lines) => lines.length >= 40);
      child.child.kill('SIGKILL');
      await child.exited;
      const acked = [...child.lines];
      const stored = await listAll((await fx.backend().open(tenantSpec('durable', isolation))).app('writer'));
      if (mode === 'set') {
        const values = new Map(stored);
        for (const key of acked) expect(values.get(key), key).toBe(JSON.stringify({ i: Number(key.slice(1)) }));
      } else {
        const byBatch = new Map<string, number>();
        for (const [key] of stored) byBatch.set(key.split(':')[0], (byBatch.get(key.split(':')[0]) ?? 0) + 1);
        for (const batch of acked) expect(byBatch.get(batch), batch).toBe(50);
        for (const [batch, count] of byBatch) expect(count, batch).toBe(50);
      }
    }
    await fx.dispose();
  });

  it('should answer a platform call with storage_error while PostgreSQL is down, and again after, without a restart', async () => {
    const fx = await postgresFixture(server);
    const dir = await tempDir();
    const raw = testConfigObject(dir.path, [{ id: 'shop' }, { id: 'bank', isolation: 'database' }]);
    const config = validateConfig({ ...raw, deployment: { ...raw.deployment, storage: { engine: 'postgres', url: fx.url, pool_max: 4 } } }, dir.path);
    const platform = await openPlatform(config, { logger: pino({ level: 'silent' }) });
    // The guest sees the coded error of fc.storage (an uncaught one would make the call a miniapp_error).
    const app = bundleOf({
      bump: async () => {
        try {
          const n = ((await fc.storage.get('n')) ?? 0) + 1;
          await fc.storage.set('n', n);
          return n;
        } catch (err) {
          return { code: (err as { code?: string }).code };
        }
      },
    });
    try {
      for (const tenant of ['shop', 'bank']) expect(await callOnce(platform, tenant, 'counter', app, 'bump')).toBe(1);
      await server.stopServer();
      for (const tenant of ['shop', 'bank']) {
        expect(await callOnce(platform, tenant, 'counter', app, 'bump')).toEqual({ code: 'storage_error' });
      }
      await expect(platform.backend.check()).rejects.toMatchObject({ code: 'storage_error' });
      await server.start();
      for (const tenant of ['shop', 'bank']) expect(await callOnce(platform, tenant, 'counter', app, 'bump')).toBe(2);
    } finally {
      await platform.close();
      await dir.dispose();
      await fx.dispose();
    }
  });
});
