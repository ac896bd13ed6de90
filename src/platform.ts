/**
 * Wires one isohost process from a validated config: the storage backend, the tenant
 * registry, the warm pool, the instance host and the app registry. `serve`, `run`,
 * the bench and the tests all start isohost through here.
 */
import { mkdir } from 'node:fs/promises';
import pino, { type Logger } from 'pino';
import type { PlatformConfig } from './config/schema.ts';
import type { StorageBackend } from './storage/backend.ts';
import { missingHostFlags } from './host-flags.ts';
import { openStorageBackend } from './storage/engine.ts';
import { TenantRegistry, type TenantChanges } from './tenants/registry.ts';
import { IsohostError } from './errors.ts';
import type { IsolatePool } from './sandbox/isolate-pool.ts';
import { InstanceHost, type FetchBindingFactory } from './sandbox/instance-host.ts';
import { InProcessTier } from './sandbox/in-process-tier.ts';
import { ProcessTierRegistry } from './sandbox/process/registry.ts';
import { AppRegistry } from './apps/registry.ts';
import { NodeDirectory } from './storage/postgres/node-directory.ts';
import { PlatformDb } from './storage/postgres/platform-schema.ts';

export interface Platform {
  /** The config in force: the one opened with, or the last one `reconfigure` accepted. */
  readonly config: PlatformConfig;
  readonly logger: Logger;
  readonly backend: StorageBackend;
  readonly tenants: TenantRegistry;
  readonly pool: IsolatePool;
  readonly host: InstanceHost;
  /** The process tiers of `compute: process` tenants (sandbox processes; /readyz, metrics). */
  readonly sandboxes: ProcessTierRegistry;
  readonly apps: AppRegistry;
  /** `deployment.node_id`. */
  readonly nodeId: string;
  /**
   * The platform's nodes and their API addresses (PostgreSQL only: LevelDB is one node).
   * `serve` announces its address once listening; instance routes forward through it.
   */
  readonly nodes: NodeDirectory | null;
  /**
   * Moves to a new validated config (`serve` on SIGHUP): tenants added, removed or
   * changed take effect, unchanged tenants keep their instances and in-flight calls.
   * Refused with `config_invalid`, changing nothing, when a `deployment` field differs
   * (listeners, data_dir, proxy: a restart applies those) or a tenant's storage would move.
   */
  reconfigure(next: PlatformConfig): Promise<TenantChanges>;
  close(): Promise<void>;
}

export interface PlatformOptions {
  logger?: Logger;
  /** Blank isolates kept warm per memory limit; default from config. */
  warmPool?: number;
  fetchBinding?: FetchBindingFactory;
}

export function createLogger(level = process.env.ISOHOST_LOG_LEVEL ?? 'info'): Logger {
  // Synchronous writes to stderr: every line is out before a CLI exit (CONTRACT §5).
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

export async function openPlatform(config: PlatformConfig, options: PlatformOptions = {}): Promise<Platform> {
  const logger = options.logger ?? createLogger();
  const missingFlags = missingHostFlags();
  if (missingFlags.length > 0) {
    logger.warn({ missing: missingFlags }, `V8 runs without ${missingFlags.join(' ')}: a shared tenant's garbage collection can take more cores than its concurrency (src/host-flags.ts; bin/isohost.js and npm start pass it)`);
  }
  // data_dir holds the node's own files (admin socket, sandbox processes) on every engine;
  // with PostgreSQL no LevelDB creates it.
  await mkdir(config.deployment.data_dir, { recursive: true, mode: 0o700 });
  const backend = await openStorageBackend(config);
  const tenants = await TenantRegistry.open(config, backend, logger).catch(async (err) => {
    await backend.close();
    throw err;
  });
  const shared = new InProcessTier({ warmPool: options.warmPool ?? config.deployment.warm_pool, memoryLimits: new Set(config.tenants.map((t) => t.limits.memory_mb)) });
  const pool = shared.pool;
  // `compute: process` tenants run only in sandbox processes of their own (issue 10), started now so their pools are warm.
  const sandboxes = new ProcessTierRegistry(config, {
    logger,
    warm: Math.max(1, options.warmPool ?? config.deployment.warm_pool),
    dataDir: config.deployment.data_dir,
    // A crash the tenant's code caused counts against its breach budget (process-tier.ts).
    onTenantCrash: (tenantId) => {
      if (tenants.has(tenantId)) host.noteBreach(tenants.get(tenantId));
    },
  });
  // Several nodes share a PostgreSQL platform: instance ids name their node so any node can forward to it.
  const storage = config.deployment.storage;
  const nodesDb = storage.engine === 'postgres' ? new PlatformDb(storage.url) : null;
  const nodes = nodesDb === null ? null : new NodeDirectory(nodesDb, config.deployment.node_id, (err) => logger.warn({ evt: 'node_heartbeat', err: String(err) }, 'node heartbeat failed; retrying'));
  const host = new InstanceHost({
    tierFor: (tenant) => sandboxes.tierFor(tenant) ?? shared,
    fetchBinding: options.fetchBinding,
    ...(nodes === null ? {} : { nodeId: config.deployment.node_id }),
  });
  const apps = new AppRegistry();
  let current = config;
  return {
    get config() {
      return current;
    },
    logger,
    backend,
    tenants,
    pool,
    host,
    sandboxes,
    apps,
    nodeId: config.deployment.node_id,
    nodes,
    async reconfigure(next) {
      const moved = Object.keys({ ...current.deployment, ...next.deployment }).filter(
        (k) => JSON.stringify(current.deployment[k as keyof typeof current.deployment]) !== JSON.stringify(next.deployment[k as keyof typeof next.deployment]),
      );
      if (moved.length > 0) throw new IsohostError('config_invalid', `deployment.${moved.join(', deployment.')} changed: a restart applies deployment settings`);
      const changes = await tenants.reconfigure(next);
      pool.warm(new Set(next.tenants.map((t) => t.limits.memory_mb)));
      await sandboxes.reconfigure(next);
      current = next;
      return changes;
    },
    async close() {
      host.disposeAll();
      await Promise.all([shared.close(), sandboxes.close()]);
      await nodes?.close();
      await nodesDb?.close();
      await backend.close();
    },
  };
}
