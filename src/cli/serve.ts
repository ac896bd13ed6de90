/**
 * `isohost serve [--port N]` (`npm start`): loads the config (built-in default when
 * none), opens the stores, starts the egress proxy and the HTTP API, deploys the
 * sample mini-apps on first start and prints how to call one. SIGTERM/SIGINT: stop
 * accepting, let in-flight calls finish (bounded), close stores, exit 0.
 */
import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { deploySamples } from '../apps/samples.ts';
import { createIdentity } from '../identity/registry.ts';
import { startEgress } from '../egress/wiring.ts';
import { buildServer } from '../http/server.ts';
import { createLogger, openPlatform } from '../platform.ts';
import { configFrom, parse, UsageError } from './args.ts';

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

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { port: { type: 'string' } });
  const config = configFrom(values);
  let port = config.deployment.listen.port;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be 0..65535');
  }
  const registry = new Registry();
  const logger = createLogger();
  const egress = await startEgress(config, { metrics: registry, logger: logger.child({ component: 'egress-proxy' }) });
  const platform = await openPlatform(config, { logger, fetchBinding: egress.fetchBinding });
  const identity = createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants, fetchJwks: egress.fetchJwks });
  const deployed = await deploySamples(platform);
  const app = await buildServer({ platform, identity, registry, readiness: { egress_proxy: () => probeTcp(egress.proxyUrl) } });
  const address = await app.listen({ host: config.deployment.listen.host, port });
  const evictor = setInterval(() => platform.host.evictIdle(config.deployment.instance_idle_ms), 10_000);
  evictor.unref();
  logger.info({ address, egress_proxy: egress.proxyUrl, data_dir: config.deployment.data_dir, deployed: deployed.length }, 'isohost serving');
  process.stdout.write(banner(address, config.tenants[0]!.id, values.config));

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  clearInterval(evictor);
  const force = setTimeout(() => {
    logger.warn('in-flight calls did not finish in time; closing anyway');
    app.server.closeAllConnections();
  }, SHUTDOWN_GRACE_MS);
  await app.close();
  clearTimeout(force);
  await platform.close();
  await egress.close();
  logger.info('stopped');
  return 0;
}

function banner(address: string, tenant: string, configFile: string | undefined): string {
  const cfg = configFile === undefined ? '' : ` --config ${configFile}`;
  return `
isohost is serving on ${address}  (no telemetry, no remote admin; operators use the CLI)

  # 1. mint a token in the ${tenant} realm
  TOKEN=$(npx isohost token${cfg} --tenant ${tenant} --sub alice --scope "apps:call apps:deploy")
  # 2. call the sample "notes" app
  curl -s -X POST ${address}/v1/tenants/${tenant}/apps/notes/calls/addNote \\
       -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"text":"hello"}'
  curl -s -X POST ${address}/v1/tenants/${tenant}/apps/notes/calls/listNotes \\
       -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{}'
  # 3. upload your own bundle
  curl -s -X PUT ${address}/v1/tenants/${tenant}/apps/my-app \\
       -H "authorization: Bearer $TOKEN" -H 'content-type: application/javascript' --data-binary @my-app.js

  health: ${address}/healthz  readiness: ${address}/readyz  metrics: ${address}/metrics  API: ${address}/openapi.json
`;
}
