/**
 * Connects the host to its egress proxy: starts it in-process (unless
 * `deployment.egress_proxy.external`, where `isohost egress-proxy` runs it) and builds
 * the per-instance fetch binding factory the instance host expects. Both sides read the
 * same `<data_dir>/egress.key`.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { fetchBinding } from '../bindings/fetch/index.ts';
import type { PlatformConfig } from '../config/schema.ts';
import type { FetchBindingFactory } from '../sandbox/instance-host.ts';
import { egressLogger, loadOrCreateEgressKey, runEgressProxyProcess } from './main.ts';
import type { Resolver } from './policy.ts';

export interface Egress {
  readonly logger: Logger;
  /** The proxy every fetch goes through (in-process or external). */
  readonly proxyUrl: string;
  readonly fetchBinding: FetchBindingFactory;
  close(): Promise<void>;
}

export interface StartEgressOptions {
  readonly logger?: Logger;
  readonly metrics?: Registry;
  readonly resolver?: Resolver;
  /** `run` uses an ephemeral port so it never collides with a running `serve`. */
  readonly ephemeralPort?: boolean;
}

/**
 * @example
 * const egress = await startEgress(config, { ephemeralPort: true });
 * const platform = await openPlatform(config, { logger: egress.logger, fetchBinding: egress.fetchBinding });
 */
export async function startEgress(config: PlatformConfig, options: StartEgressOptions = {}): Promise<Egress> {
  const logger = options.logger ?? egressLogger();
  const settings = config.deployment.egress_proxy;
  const credentialKey = await loadOrCreateEgressKey(config.deployment.data_dir);
  const proxy = settings.external ? null : await runEgressProxyProcess(config, { ...options, logger });
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const proxyUrl = proxy?.url ?? `http://${host}:${settings.port}`;
  return {
    logger,
    proxyUrl,
    fetchBinding: (tenant) =>
      fetchBinding({ proxyUrl, credentialKey, tenantId: tenant.id, limits: tenant.limits, logger: tenant.logger }),
    close: async () => {
      await proxy?.close();
    },
  };
}
