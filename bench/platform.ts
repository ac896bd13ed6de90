/**
 * A real isohost platform for the bench: the real config schema, real LevelDB in a
 * temp dir, real isolates; logging silenced so the table is all that prints.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { versionOf } from '../src/apps/bundle.ts';
import { validateConfig } from '../src/config/load.ts';
import { openPlatform, type Platform, type PlatformOptions } from '../src/platform.ts';
import type { PlatformConfig } from '../src/config/schema.ts';
import type { AppBundle } from '../src/sandbox/instance-host.ts';

export const NOOP_BUNDLE = `
export function noop(a) { return a; }
export async function get(a) { return await fc.storage.get("k"); }
export async function set(a) { await fc.storage.set("k", a); return null; }
export async function fetchSmall(a) { const r = await fc.fetch(a.url); return await r.text(); }
`;

export function bundle(id: string, source: string): AppBundle {
  const sha256 = createHash('sha256').update(source).digest('hex');
  return { id, version: versionOf(sha256), source, sha256 };
}

const DEFAULT_TENANTS = [{ id: 'bench', limits: { cpu_ms: 1000, wall_ms: 10_000, instances: 100_000, concurrency: 64 } }];

/** A validated config over a fresh temp data dir (schema isolation, iam-internal realms by default). */
export async function benchConfig(
  warmPool: number,
  tenantOverrides: Record<string, unknown>[] = DEFAULT_TENANTS,
  deployment: Record<string, unknown> = {},
): Promise<{ config: PlatformConfig; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'isohost-bench-'));
  const config = validateConfig(
    {
      deployment: { data_dir: dir, warm_pool: warmPool, ...deployment },
      tenants: tenantOverrides.map((t) => ({
        storage: { namespace: t.id, isolation: 'schema' },
        identity: { provider: 'iam-internal', realm: t.id },
        ...t,
      })),
    },
    dir,
  );
  return { config, dir };
}

/** Opens a platform on `config`; dispose() closes it and removes `dir`. */
export async function openBenchPlatform(config: PlatformConfig, dir: string, options: PlatformOptions = {}): Promise<Platform & { dispose(): Promise<void>; dataDir: string }> {
  const platform = await openPlatform(config, { logger: pino({ level: 'silent' }), ...options });
  return Object.assign(platform, {
    dataDir: dir,
    async dispose() {
      await platform.close();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

export async function benchPlatform(
  warmPool: number,
  tenantOverrides: Record<string, unknown>[] = DEFAULT_TENANTS,
  options: PlatformOptions = {},
): Promise<Platform & { dispose(): Promise<void>; dataDir: string }> {
  const { config, dir } = await benchConfig(warmPool, tenantOverrides);
  return openBenchPlatform(config, dir, options);
}

/** Waits until the warm pool holds `n` blank isolates again (outside timed sections). */
export async function poolRefilled(platform: Platform, n: number): Promise<void> {
  while (platform.pool.size < n) await new Promise((r) => setImmediate(r));
}
