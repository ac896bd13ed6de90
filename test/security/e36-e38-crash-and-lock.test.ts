/**
 * THREATS E36–E38 end to end: a real platform in a child process writes through
 * fc.storage in a real isolate and is killed with SIGKILL mid-loop; the real CLI
 * (`isohost tenant export`) then reads what survived. A second process opening the
 * stores while a platform holds them gets a coded, path-free storage_error (exit 1)
 * and changes nothing. (test/storage/durability.test.ts covers the same at the
 * storage-backend level; this is the path a mini-app's write actually takes.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { expectSanitised, spawnPlatformChild, writeConfigFile, type PlatformChild } from '../helpers/security-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let configFile: string;
const children: PlatformChild[] = [];

beforeAll(async () => {
  dir = await tempDir('isohost-sec-crash-');
  configFile = writeConfigFile(dir.path, [
    { id: 'writer-s', namespace: 'ns-writer-s', isolation: 'schema', limits: { cpu_ms: 2000, wall_ms: 10_000 } },
    { id: 'writer-d', namespace: 'ns-writer-d', isolation: 'database', limits: { cpu_ms: 2000, wall_ms: 10_000 } },
  ]);
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await dir.dispose();
});

function child(...args: Parameters<typeof spawnPlatformChild>): PlatformChild {
  const c = spawnPlatformChild(...args);
  children.push(c);
  return c;
}

/** `isohost tenant export` → the tenant's entries as key → value. */
async function exported(tenant: string): Promise<Map<string, unknown>> {
  const res = await cli(['tenant', 'export', tenant, '--config', configFile]);
  expect(res.code, res.stderr).toBe(0);
  const out = new Map<string, unknown>();
  for (const line of res.stdout.split('\n').filter(Boolean)) {
    const e = JSON.parse(line) as { kind: string; app: string; key: string; value: unknown };
    if (e.kind !== 'data') continue; // header, realm keys, trailer (docs/tenant-export.md)
    expect(e.app).toBe('writer');
    out.set(e.key, e.value);
  }
  return out;
}

const snapshots = new Map<string, Map<string, unknown>>();

describe('SIGKILL during a write loop through fc.storage (E36, E37)', () => {
  it('should keep every acknowledged fc.storage.set (schema isolation)', async () => {
    const writer = child('set', configFile, 'writer-s');
    await writer.until((lines) => lines.length >= 40);
    await writer.kill();
    const acked = [...writer.lines];
    const stored = await exported('writer-s');
    for (const key of acked) expect(stored.get(key), key).toEqual({ i: Number(key.slice(1)) });
    // At most the one write in flight at the kill may be there without its ack.
    expect(stored.size - acked.length).toBeLessThanOrEqual(1);
    snapshots.set('writer-s', stored);
  });

  it('should keep every acknowledged fc.storage.batch, and no partial batch (database isolation)', async () => {
    const writer = child('batch', configFile, 'writer-d');
    await writer.until((lines) => lines.length >= 15);
    await writer.kill();
    const acked = [...writer.lines];
    const stored = await exported('writer-d');
    const perBatch = new Map<string, number>();
    for (const key of stored.keys()) perBatch.set(key.split(':')[0]!, (perBatch.get(key.split(':')[0]!) ?? 0) + 1);
    for (const batch of acked) expect(perBatch.get(batch), batch).toBe(50);
    for (const [batch, count] of perBatch) expect(count, `${batch} is all or nothing`).toBe(50);
    snapshots.set('writer-d', stored);
  });
});

describe('a second process opening the stores (E38)', () => {
  it('should refuse `isohost tenant export` and `purge` with storage_error, exit 1, and damage nothing', async () => {
    const holder = child('hold', configFile, 'writer-s');
    await holder.until((lines) => lines.includes('ready'));
    const attempts = await Promise.all([
      cli(['tenant', 'export', 'writer-s', '--config', configFile]),
      cli(['tenant', 'export', 'writer-d', '--config', configFile]),
      cli(['tenant', 'purge', 'writer-d', '--yes', '--config', configFile]),
    ]);
    for (const res of attempts) {
      expect(res.code, res.stderr).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.lastError?.error?.code).toBe('storage_error');
      expect(res.lastError?.error?.message).toMatch(/locked/);
      expectSanitised(res.lastError?.error?.message, [dir.path, 'ns-writer-s', 'ns-writer-d']);
    }
    await holder.kill();
    // Nothing was lost or changed by the refused openers (nor by the killed holder).
    expect(await exported('writer-s')).toEqual(snapshots.get('writer-s'));
    expect(await exported('writer-d')).toEqual(snapshots.get('writer-d'));
  });
});
