/**
 * `isohost serve [--port N] [--egress-port N]` (`npm start`): loads the config (built-in
 * default when none), starts the egress proxy, opens the stores, deploys the sample
 * mini-apps where `deployment.samples` asks, and serves the HTTP API.
 *
 * Starts and stops an init system can trust (issue 9):
 * - a fatal start-up error closes everything opened before it and ends the command with
 *   one coded line (a port in use names the port and the flag that changes it);
 * - SIGTERM/SIGINT: `/readyz` answers 503 (so a load balancer stops routing here) while
 *   in-flight requests finish, bounded by SHUTDOWN_GRACE_MS; then exit 0;
 * - SIGHUP re-reads the config file: tenants added, removed or changed take effect, the
 *   others keep their instances and in-flight calls; an invalid config is refused with
 *   a log line and the one in force stays.
 */
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import { Gauge, Registry } from 'prom-client';
import { startAdminSocket } from '../admin/socket.ts';
import { deploySamples } from '../apps/samples.ts';
import type { PlatformConfig } from '../config/schema.ts';
import { openKeyStore } from '../identity/key-store.ts';
import type { RealmKeyStore } from '../identity/realm-keys.ts';
import { createIdentity, replaceableIdentity } from '../identity/registry.ts';
import { startEgress, type Egress } from '../egress/wiring.ts';
import { IsohostError, toIsohostError } from '../errors.ts';
import { buildServer } from '../http/server.ts';
import { buildOpsServer } from '../http/ops-server.ts';
import { createLogger, openPlatform, type Platform } from '../platform.ts';
import { configFrom, parse, UsageError } from './args.ts';
import type { Logger } from 'pino';

const SHUTDOWN_GRACE_MS = 10_000;

function probeTcp(url: string): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) }, () => {
      s.destroy();
      resolve();
    });
    s.setTimeout(1000, () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}

function portFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`${flag} must be 0..65535`);
  return port;
}

/** A listen failure, with the flag (if any) and config key that move it. */
function withPortHint(err: unknown, flag: string | undefined, key: string, what = 'the HTTP API'): never {
  const hint = flag === undefined ? `choose another port in ${key}` : `choose another port with ${flag} N (or ${key} in the config)`;
  const e = toIsohostError(err);
  if (e.code === 'unavailable' && e.details?.reason === 'address_in_use') {
    throw new IsohostError('unavailable', `${e.message}; ${hint}`, { details: e.details });
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    const where = (err as { address?: string; port?: number }).address;
    const port = (err as { port?: number }).port;
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied' : 'the address is not available here';
    throw new IsohostError('unavailable', `${what} cannot listen on ${where}:${port}: ${why}; ${hint}`, {
      details: { reason: code === 'EADDRINUSE' ? 'address_in_use' : 'listen_failed', port },
    });
  }
  throw err;
}

/** What a start opened, closed in reverse order when a later step fails or at shutdown. */
class Opened {
  readonly #closers: (() => Promise<unknown>)[] = [];

  add(close: () => Promise<unknown>): void {
    this.#closers.push(close);
  }

  async closeAll(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) await close().catch(() => {});
  }
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { port: { type: 'string' }, 'egress-port': { type: 'string' } });
  const port = portFlag(values.port, '--port');
  const egressPort = portFlag(values['egress-port'], '--egress-port');
  const config = configFrom(values);
  if (egressPort !== undefined && config.deployment.egress_proxy.external) {
    throw new UsageError('--egress-port applies to the in-process egress proxy; this config uses an external one (egress_proxy.external)');
  }
  const registry = new Registry();
  // Every line names its node (issue 13): several nodes' logs can be read side by side.
  const logger = createLogger().child({ node: config.deployment.node_id });
  new Gauge({ name: 'isohost_node_info', help: 'This node (deployment.node_id); always 1', labelNames: ['node'], registers: [registry] }).set({ node: config.deployment.node_id }, 1);
  const opened = new Opened();
  let state: Started;
  try {
    state = await start(config, { port, egressPort, registry, logger, opened, configFile: values.config as string | undefined });
  } catch (err) {
    await opened.closeAll();
    throw err;
  }
  const { app, platform, egress, identity } = state;

  let reloading: Promise<void> = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(() => reloadConfig(values, { platform, egress, identity, logger, keys: state.keys }));
  };
  process.on('SIGHUP', reload);

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.off('SIGHUP', reload);
  // A second signal while draining (a supervisor repeating itself, or ^C twice) must not
  // fall back to the default action and kill in-flight calls: the grace bound ends the drain.
  const again = (sig: string) => logger.warn({ signal: sig }, 'already draining; exiting once in-flight requests finish');
  process.on('SIGTERM', again);
  process.on('SIGINT', again);
  logger.info({ signal, in_flight: state.inFlight() }, 'draining: readiness is 503 while in-flight requests finish');
  state.setDraining();
  await state.drained(SHUTDOWN_GRACE_MS).then((done) => {
    if (!done) logger.warn({ in_flight: state.inFlight() }, 'in-flight requests did not finish in time; closing anyway');
  });
  await reloading;
  app.server.closeAllConnections();
  await opened.closeAll();
  logger.info('stopped');
  process.off('SIGTERM', again);
  process.off('SIGINT', again);
  return 0;
}

interface Started {
  app: FastifyInstance;
  platform: Platform;
  egress: Egress;
  identity: ReturnType<typeof replaceableIdentity>;
  keys: RealmKeyStore;
  inFlight(): number;
  /** Resolves true once no API request is in flight, false at the deadline. */
  drained(ms: number): Promise<boolean>;
  setDraining(): void;
}

async function start(
  config: PlatformConfig,
  o: { port: number | undefined; egressPort: number | undefined; registry: Registry; logger: Logger; opened: Opened; configFile: string | undefined },
): Promise<Started> {
  const { logger, opened } = o;
  const egress = await startEgress(config, { metrics: o.registry, logger: logger.child({ component: 'egress-proxy' }), port: o.egressPort }).catch((err) =>
    withPortHint(err, '--egress-port', 'deployment.egress_proxy.port'),
  );
  opened.add(() => egress.close());
  const platform = await openPlatform(config, { logger, fetchBinding: egress.fetchBinding });
  opened.add(() => platform.close());
  // Realm keys: files under data_dir, or the platform schema shared by every node (PostgreSQL).
  const keys = openKeyStore(config);
  opened.add(() => keys.close());
  const identity = replaceableIdentity(createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants, operatorRealm: config.deployment.operator_realm, fetchJwks: egress.fetchJwks, keys: keys.realms }));
  const admin = await startAdminSocket({ platform, identity, logger: logger.child({ component: 'admin-socket' }) });
  opened.add(() => admin.close());
  const deployed = config.deployment.samples ? await deploySamples(platform) : [];

  let inFlight = 0;
  let idle: (() => void) | undefined;
  const app = await buildServer({
    platform,
    identity,
    registry: o.registry,
    readiness: { egress_proxy: () => probeTcp(egress.proxyUrl) },
  });
  // In-flight requests, counted on the raw server (every route, whatever its plugin), so
  // shutdown knows when the last one ended.
  app.server.on('request', (_req: unknown, res: import('node:http').ServerResponse) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
  });
  opened.add(() => app.close());
  const address = await app.listen({ host: config.deployment.listen.host, port: o.port ?? config.deployment.listen.port }).catch((err) =>
    withPortHint(err, '--port', 'deployment.listen.port'),
  );
  // Other nodes forward calls for this node's instances to this address (PostgreSQL platforms).
  await platform.nodes?.announce(config.deployment.advertise_url ?? advertised(app));
  let ops: FastifyInstance | undefined;
  const opsListen = config.deployment.ops_listen;
  if (opsListen !== undefined) {
    const opsApp = await buildOpsServer(app);
    opened.add(() => opsApp.close());
    await opsApp.listen({ host: opsListen.host, port: opsListen.port }).catch((err) => withPortHint(err, undefined, 'deployment.ops_listen.port', 'the ops listener'));
    ops = opsApp;
  }
  const evictor = setInterval(() => platform.host.evictIdle(platform.config.deployment.instance_idle_ms), 10_000);
  evictor.unref();
  opened.add(async () => clearInterval(evictor));
  const opsAddress = ops === undefined ? undefined : `http://${opsListen!.host.includes(':') ? `[${opsListen!.host}]` : opsListen!.host}:${(ops.server.address() as { port: number }).port}`;
  logger.info({ address, ops_address: opsAddress, egress_proxy: egress.proxyUrl, data_dir: config.deployment.data_dir, deployed: deployed.length }, 'isohost serving');
  process.stdout.write(banner(address, opsAddress ?? address, config, o.configFile));
  return {
    app,
    platform,
    egress,
    identity,
    keys: keys.realms,
    inFlight: () => inFlight,
    drained: (ms) =>
      new Promise<boolean>((resolve) => {
        if (inFlight === 0) return resolve(true);
        const t = setTimeout(() => resolve(false), ms);
        idle = () => {
          clearTimeout(t);
          resolve(true);
        };
      }),
    setDraining: () => {
      app.isohost.draining = true;
    },
  };
}

/**
 * SIGHUP: re-reads the config file. Everything that can fail is tried before anything
 * changes (parse and validate, realms, egress rules, tenant stores); a failure logs one
 * line with its code and leaves the config in force as it was.
 */
async function reloadConfig(
  values: { config?: unknown; data?: unknown },
  s: { platform: Platform; egress: Egress; identity: ReturnType<typeof replaceableIdentity>; logger: Logger; keys: RealmKeyStore },
): Promise<void> {
  const { platform, egress, identity, logger } = s;
  if (values.config === undefined) {
    logger.warn({ evt: 'reload' }, 'SIGHUP: serving the built-in default config; there is no file to re-read');
    return;
  }
  const before = platform.config;
  try {
    const next = configFrom(values);
    // A reload never moves storage (deployment fields need a restart): the key store in force stays.
    const nextIdentity = createIdentity({ dataDir: next.deployment.data_dir, tenants: next.tenants, operatorRealm: next.deployment.operator_realm, fetchJwks: egress.fetchJwks, keys: s.keys });
    egress.setTenants(next);
    let changes;
    try {
      changes = await platform.reconfigure(next);
    } catch (err) {
      egress.setTenants(before);
      throw err;
    }
    identity.replace(nextIdentity);
    const deployed = next.deployment.samples ? await deploySamples(platform) : [];
    logger.info({ evt: 'reload', file: values.config, added: changes.added, removed: changes.removed, changed: changes.changed, samples_deployed: deployed.length }, 'config reloaded');
  } catch (err) {
    const e = toIsohostError(err);
    logger.error({ evt: 'reload', file: values.config, code: e.code, reason: e.code === 'internal' ? String(err) : e.message }, 'config reload refused; the config in force stays');
  }
}

/** The API's address for other nodes: a wildcard listen host is replaced by the host name. */
function advertised(app: FastifyInstance): string {
  const { address, port } = app.server.address() as { address: string; port: number };
  const host = address === '0.0.0.0' || address === '::' ? hostname() : address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${port}`;
}

function banner(address: string, opsAddress: string, config: PlatformConfig, configFile: string | undefined): string {
  const cfg = configFile === undefined ? '' : ` --config ${configFile}`;
  const tenant = config.tenants.find((t) => t.identity.provider === 'iam-internal') ?? config.tenants[0]!;
  const token =
    tenant.identity.provider === 'iam-internal'
      ? `  # 1. mint a token in the ${tenant.id} realm (from this checkout)
  TOKEN=$(node bin/isohost.js token${cfg} --tenant ${tenant.id} --sub alice --scope "apps:call apps:deploy")`
      : `  # 1. get a token for ${tenant.id} from its identity provider (${tenant.identity.issuer}, audience ${tenant.identity.audience})
  TOKEN=...`;
  const samples = config.deployment.samples
    ? `  # 2. call the sample "notes" app
  curl -s -X POST ${address}/v1/tenants/${tenant.id}/apps/notes/calls/addNote \\
       -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"text":"hello"}'
  curl -s -X POST ${address}/v1/tenants/${tenant.id}/apps/notes/calls/listNotes \\
       -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{}'
`
    : '';
  return `
isohost is serving on ${address}  (no telemetry; operators use the CLI and the console)

${token}
${samples}  # ${samples === '' ? 2 : 3}. upload your own bundle
  curl -s -X PUT ${address}/v1/tenants/${tenant.id}/apps/my-app \\
       -H "authorization: Bearer $TOKEN" -H 'content-type: application/javascript' --data-binary @my-app.js

  health: ${opsAddress}/healthz  readiness: ${opsAddress}/readyz  metrics: ${opsAddress}/metrics  API: ${address}/openapi.json
  console: ${opsAddress}/console/  (node bin/isohost.js console${cfg} prints a sign-in link)
`;
}
