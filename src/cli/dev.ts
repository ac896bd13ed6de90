/**
 * `isohost dev SRC --tenant ID [--app ID] [--port N]`: one app on a local port, rebuilt and
 * redeployed on every save (issue 12).
 *
 * What runs is production's own path, not a simulation: the egress proxy, the platform
 * (isolates, limits, storage) and the HTTP API of `serve`, for the one tenant taken from
 * --config (or the built-in default) with its limits, network allowlist, storage isolation
 * and compute tier as configured. Each rebuild is uploaded through the real upload route,
 * so a bundle that production would refuse is refused here too. What differs, and why:
 * - data lives in `.isohost-dev/` beside the project (or --data), always on LevelDB: a dev
 *   loop must never write to a shared PostgreSQL;
 * - the tenant's review is off (an operator's review gates production, not a laptop), and
 *   an external identity provider becomes a local realm of the same name, so dev can mint
 *   the token it prints.
 * Stdout carries one JSON line per event (`ready`, `reloaded`, `failed`); logs go to stderr.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { checkAppId } from '../apps/registry.ts';
import type { PlatformConfig } from '../config/schema.ts';
import { deepFreeze } from '../config/load.ts';
import { startEgress } from '../egress/wiring.ts';
import { toIsohostError, IsohostError } from '../errors.ts';
import { buildServer } from '../http/server.ts';
import { createIdentity } from '../identity/registry.ts';
import { createLogger, openPlatform } from '../platform.ts';
import { configFrom, parse, required, requireTenant, UsageError } from './args.ts';
import { buildBundle, projectRoot } from './build.ts';

const DEBOUNCE_MS = 150;
const DEFAULT_PORT = 8787;
/** Saves of these kinds rebuild; editors' swap and backup files do not. */
const SOURCE_FILE = /\.(m?[jt]sx?|c[jt]s|json)$/;

/** The one-tenant config dev runs: the tenant as configured, with the differences the file comment lists. */
export function devConfig(config: PlatformConfig, tenantId: string, o: { dataDir: string; port: number }): PlatformConfig {
  const t = config.tenants.find((x) => x.id === tenantId)!;
  const identity = t.identity.provider === 'iam-internal' ? t.identity : { provider: 'iam-internal' as const, realm: t.identity.realm };
  const d = config.deployment;
  return deepFreeze({
    ...config,
    deployment: {
      ...d,
      data_dir: o.dataDir,
      listen: { host: '127.0.0.1', port: o.port },
      ops_listen: undefined,
      operator_realm: undefined,
      samples: false,
      storage: { engine: 'leveldb' as const },
      egress_proxy: d.egress_proxy.external ? d.egress_proxy : { ...d.egress_proxy, port: 0 },
    },
    tenants: [{ ...t, identity, review: 'none' as const }],
  });
}

function portOf(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PORT;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError('--port must be 0..65535');
  return port;
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

export async function devCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { tenant: { type: 'string' }, app: { type: 'string' }, port: { type: 'string' } }, 1);
  const src = positionals[0];
  if (src === undefined) throw new UsageError('usage: isohost dev SRC --tenant ID [--app ID] [--port N]');
  const tenantId = required(values, 'tenant');
  const appId = values.app ?? basename(src, extname(src));
  try {
    checkAppId(appId);
  } catch {
    throw new UsageError(`--app "${appId}" must match [a-z0-9][a-z0-9-]{0,62} (it defaults to the source's file name)`);
  }
  const port = portOf(values.port);
  const entry = resolve(src);
  const root = projectRoot(entry);
  const dataDir = resolve((values.data as string | undefined) ?? join(root, '.isohost-dev'));
  // The tenant's settings come from the config; its data_dir does not (dev data stays local).
  const loaded = configFrom({ config: values.config });
  requireTenant(loaded, tenantId);
  const config = devConfig(loaded, tenantId, { dataDir, port });

  const logger = createLogger();
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  };
  let app: FastifyInstance;
  let token: string;
  try {
    const egress = await startEgress(config, { logger: logger.child({ component: 'egress-proxy' }) });
    closers.push(() => egress.close());
    const platform = await openPlatform(config, { logger, fetchBinding: egress.fetchBinding });
    closers.push(() => platform.close());
    const identity = createIdentity({ dataDir, tenants: config.tenants, fetchJwks: egress.fetchJwks });
    app = await buildServer({ platform, identity });
    closers.push(() => app.close());
    await app.listen({ host: '127.0.0.1', port }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') throw err;
      throw new IsohostError('unavailable', `dev cannot listen on 127.0.0.1:${port}: the address is in use; choose another port with --port N (0 = any free port)`);
    });
    const evictor = setInterval(() => platform.host.evictIdle(config.deployment.instance_idle_ms), 10_000);
    closers.push(async () => clearInterval(evictor));
    token = await identity.mint(tenantId, { sub: 'dev', scope: 'apps:call apps:deploy', ttl: '12h' });
  } catch (err) {
    await closeAll();
    throw err;
  }
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const bundleFile = join(dataDir, `${appId}.js`);

  /** Builds and uploads through the real route; the first failure ends dev, later ones keep the last good version. */
  const reload = async (): Promise<{ version: string }> => {
    const built = await buildBundle(entry, bundleFile);
    const res = await app.inject({
      method: 'PUT',
      url: `/v1/tenants/${tenantId}/apps/${appId}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/javascript' },
      payload: await readFile(built.out),
    });
    const body = res.json() as { version?: string; error?: { code: string; message: string } };
    if (res.statusCode !== 201 || typeof body.version !== 'string') {
      throw body.error !== undefined ? new IsohostError(body.error.code as IsohostError['code'], body.error.message) : new IsohostError('internal', `upload answered ${res.statusCode}`);
    }
    return { version: body.version };
  };

  let first;
  try {
    first = await reload();
  } catch (err) {
    await closeAll();
    throw err;
  }
  emit({ event: 'ready', url, tenant: tenantId, app: appId, version: first.version, token, data_dir: dataDir });
  process.stderr.write(
    `isohost dev: ${appId} of ${tenantId} on ${url}; rebuilds on save under ${dirname(entry)}\n` +
      `  curl -s -X POST ${url}/v1/tenants/${tenantId}/apps/${appId}/calls/METHOD -H "authorization: Bearer ${token}" -H 'content-type: application/json' -d '{}'\n`,
  );

  // Saves come in bursts (an editor writes, renames, touches): one rebuild per burst, never two at once.
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(async () => {
        const started = Date.now();
        try {
          const { version } = await reload();
          emit({ event: 'reloaded', version, ms: Date.now() - started });
        } catch (err) {
          emit({ event: 'failed', error: toIsohostError(err).toJSON().error });
        }
      });
    }, DEBOUNCE_MS);
  };
  const watched = dirname(entry);
  let watcher: FSWatcher;
  try {
    watcher = watch(watched, { recursive: true }, (_kind, name) => {
      if (name === null || !SOURCE_FILE.test(name)) return;
      // The dev data dir (and its bundle) may sit under the watched directory: its writes are not saves.
      const changed = resolve(watched, name);
      if (changed === dataDir || changed.startsWith(dataDir + sep) || relative(watched, changed).split(sep).includes('node_modules')) return;
      schedule();
    });
  } catch (err) {
    await closeAll();
    throw err;
  }

  const signal = await new Promise<string>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  logger.info({ signal }, 'dev stopping');
  watcher.close();
  clearTimeout(timer);
  await running;
  app.server.closeAllConnections();
  await closeAll();
  return 0;
}
