/**
 * Connects the host to its egress proxy: starts it in-process (unless
 * `deployment.egress_proxy.external`, where `isohost egress-proxy` runs it) and builds
 * the per-instance fetch binding factory the instance host expects. Both sides read the
 * same key (`<data_dir>/egress.key`, or the platform schema on PostgreSQL).
 */
import type { Logger } from 'pino';
import { fetchBinding } from '../bindings/fetch/index.ts';
import type { PlatformConfig } from '../config/schema.ts';
import type { FetchBindingFactory } from '../sandbox/instance-host.ts';
import { egressKeyOf, egressLogger, egressTenants, runEgressProxyProcess, type EgressProcessOptions } from './main.ts';
import { jwksFetcher } from './jwks-fetch.ts';

export interface Egress {
  readonly logger: Logger;
  /** The proxy every fetch goes through (in-process or external). */
  readonly proxyUrl: string;
  readonly fetchBinding: FetchBindingFactory;
  /** Fetches an external realm's `jwks_uri` through the proxy, as the tenant that names it. */
  readonly fetchJwks: (url: string) => Promise<unknown>;
  /**
   * A reloaded config's tenants: the in-process proxy's policies are replaced at once
   * (a bad rule throws and changes nothing). An external proxy reads its own config.
   */
  setTenants(config: PlatformConfig): void;
  close(): Promise<void>;
}

export type StartEgressOptions = EgressProcessOptions;

/**
 * @example
 * const egress = await startEgress(config, { ephemeralPort: true });
 * const platform = await openPlatform(config, { logger: egress.logger, fetchBinding: egress.fetchBinding });
 */
export async function startEgress(config: PlatformConfig, options: StartEgressOptions = {}): Promise<Egress> {
  const logger = options.logger ?? egressLogger();
  const settings = config.deployment.egress_proxy;
  const credentialKey = await egressKeyOf(config);
  const proxy = settings.external ? null : await runEgressProxyProcess(config, { ...options, logger }, credentialKey);
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const proxyUrl = proxy?.url ?? `http://${host}:${settings.port}`;
  let jwks = jwksFetcher(config, proxyUrl, credentialKey);
  return {
    logger,
    proxyUrl,
    fetchJwks: (url) => jwks(url),
    setTenants: (next) => {
      proxy?.setTenants(egressTenants(next));
      jwks = jwksFetcher(next, proxyUrl, credentialKey);
    },
    // One binding (and so one proxy client, instance-client.ts) per instance.
    fetchBinding: (tenant) => fetchBinding({ proxyUrl, credentialKey, tenantId: tenant.id, limits: tenant.limits, logger: tenant.logger }),
    close: async () => {
      await proxy?.close();
    },
  };
}
