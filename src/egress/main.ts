/**
 * The egress proxy as a process (`isohost egress-proxy`, or in-process for `serve`/`run`).
 * The credential key is shared with the host through `<data_dir>/egress.key`: 32 random
 * bytes, hex, created 0600 on first use (on PostgreSQL: the platform schema, `egressKeyOf`). A key readable by group or others is refused,
 * as ssh refuses a private key with loose permissions.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PlatformConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import { MIN_KEY_BYTES } from './credential.ts';
import { loadOrCreatePgEgressKey } from '../storage/postgres/platform-keys.ts';
import { PlatformDb } from '../storage/postgres/platform-schema.ts';
import type { Resolver } from './policy.ts';
import { type EgressProxy, type TenantEgressPolicy, startEgressProxy } from './proxy.ts';

export const EGRESS_KEY_FILE = 'egress.key';

/**
 * Reads `<dataDir>/egress.key`, creating it (mode 0600, exclusive create) if absent.
 *
 * @example
 * const key = await loadOrCreateEgressKey('./data'); // Buffer of 32 bytes
 */
export async function loadOrCreateEgressKey(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, EGRESS_KEY_FILE);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600); // the umask may have narrowed it further, never widened; be explicit
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new IsohostError('config_invalid', `cannot create ${EGRESS_KEY_FILE} in data_dir (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) throw new IsohostError('config_invalid', `${EGRESS_KEY_FILE} in data_dir is readable by group or others; chmod 600 it`);
  const text = (await readFile(path, 'utf8')).trim();
  const key = /^[0-9a-f]+$/i.test(text) && text.length % 2 === 0 ? Buffer.from(text, 'hex') : Buffer.alloc(0);
  if (key.length < MIN_KEY_BYTES) throw new IsohostError('config_invalid', `${EGRESS_KEY_FILE} in data_dir must hold at least ${MIN_KEY_BYTES} bytes as hex`);
  return key;
}

/**
 * The credential key of a config's platform: `<data_dir>/egress.key` on LevelDB; on PostgreSQL
 * the platform schema's, the same on every node (storage/postgres/platform-keys.ts).
 *
 * @example
 * const key = await egressKeyOf(config);
 */
export async function egressKeyOf(config: PlatformConfig): Promise<Buffer> {
  const storage = config.deployment.storage;
  if (storage.engine === 'leveldb') return loadOrCreateEgressKey(config.deployment.data_dir);
  const db = new PlatformDb(storage.url);
  try {
    return await loadOrCreatePgEgressKey(db);
  } finally {
    await db.close();
  }
}

/** The proxy's view of the config: tenant id → its allow rules and limits. */
export function egressTenants(config: PlatformConfig): Map<string, TenantEgressPolicy> {
  return new Map(config.tenants.map((t) => [t.id, { rules: t.network.allow, limits: t.limits }]));
}

export function egressLogger(level = process.env.ISOHOST_LOG_LEVEL ?? 'info'): Logger {
  // pino JSON lines on stderr, synchronous so the last line is out before exit (CONTRACT §5).
  return pino({ level, base: { pid: process.pid, component: 'egress-proxy' } }, pino.destination({ dest: 2, sync: true }));
}

export interface EgressProcessOptions {
  readonly logger?: Logger;
  readonly metrics?: Registry;
  readonly resolver?: Resolver;
  /** Listen on an ephemeral port instead of `deployment.egress_proxy.port` (`run`, so it never collides with a running `serve`). */
  readonly ephemeralPort?: boolean;
  /** Overrides `deployment.egress_proxy.port` (`serve --egress-port N`; 0 = any free port). */
  readonly port?: number;
}

/**
 * Starts the proxy for a validated config: key from data_dir (unless the caller already
 * loaded it), rules from `network.allow`.
 *
 * @example
 * const proxy = await runEgressProxyProcess(config);
 */
export async function runEgressProxyProcess(config: PlatformConfig, options: EgressProcessOptions = {}, credentialKey?: Uint8Array): Promise<EgressProxy> {
  const logger = options.logger ?? egressLogger();
  const { host, port } = config.deployment.egress_proxy;
  const proxy = await startEgressProxy({
    host,
    port: options.ephemeralPort ? 0 : (options.port ?? port),
    tenants: egressTenants(config),
    credentialKey: credentialKey ?? (await egressKeyOf(config)),
    resolver: options.resolver,
    logger,
    metrics: options.metrics,
  });
  logger.info({ evt: 'egress', url: proxy.url, tenants: config.tenants.length, data_residency: config.deployment.data_residency }, 'egress proxy listening');
  return proxy;
}
