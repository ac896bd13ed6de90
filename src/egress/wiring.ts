/**
 * Connects the host to its egress proxy: starts it in-process (unless
 * `deployment.egress_proxy.external`, where `isohost egress-proxy` runs it) and builds
 * the per-instance fetch binding factory the instance host expects. Both sides read the
 * same `<data_dir>/egress.key`.
 */
import type { Logger } from 'pino';
import { fetchBinding } from '../bindings/fetch/index.ts';
import type { PlatformConfig } from '../config/schema.ts';
import type { FetchBindingFactory } from '../sandbox/instance-host.ts';
import { egressLogger, egressTenants, loadOrCreateEgressKey, runEgressProxyProcess, type EgressProcessOptions } from './main.ts';
import { createEgressClient, type EgressClient } from './client.ts';
import { mintEgressCredential } from './credential.ts';
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
  const credentialKey = await loadOrCreateEgressKey(config.deployment.data_dir);
  const proxy = settings.external ? null : await runEgressProxyProcess(config, { ...options, logger }, credentialKey);
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const proxyUrl = proxy?.url ?? `http://${host}:${settings.port}`;
  let jwks = jwksFetcher(config, proxyUrl, credentialKey);
  const shared = new Map<string, () => EgressClient>();
  const rotating: TenantClient[] = [];
  return {
    logger,
    proxyUrl,
    fetchJwks: (url) => jwks(url),
    setTenants: (next) => {
      proxy?.setTenants(egressTenants(next));
      jwks = jwksFetcher(next, proxyUrl, credentialKey);
    },
    fetchBinding: (tenant) => {
      let client = shared.get(tenant.id);
      if (client === undefined) {
        const t = new TenantClient(proxyUrl, credentialKey, tenant.id);
        rotating.push(t);
        shared.set(tenant.id, (client = () => t.get()));
      }
      return fetchBinding({ proxyUrl, credentialKey, tenantId: tenant.id, limits: tenant.limits, logger: tenant.logger, sharedClient: client });
    },
    close: async () => {
      await Promise.all(rotating.map((t) => t.close()));
      await proxy?.close();
    },
  };
}

/** Credential lifetime of a tenant-wide client, and how long before expiry it is replaced. */
const CLIENT_TTL_MS = 15 * 60_000;
const CLIENT_RENEW_MS = 5 * 60_000;
/** A replaced client keeps serving requests already under way for this long. */
const CLIENT_DRAIN_MS = 60_000;

/**
 * One proxy client per tenant, reused across calls so keep-alive connections to the
 * proxy are reused. Its credential names only the tenant (it never enters an isolate);
 * it is replaced before it expires.
 */
class TenantClient {
  readonly #proxyUrl: string;
  readonly #key: Uint8Array;
  readonly #tenant: string;
  #current: { client: EgressClient; exp: number } | undefined;
  readonly #retired = new Set<EgressClient>();

  constructor(proxyUrl: string, key: Uint8Array, tenant: string) {
    this.#proxyUrl = proxyUrl;
    this.#key = key;
    this.#tenant = tenant;
  }

  get(): EgressClient {
    const now = Date.now();
    if (this.#current === undefined || this.#current.exp - now < CLIENT_RENEW_MS) {
      const old = this.#current?.client;
      const exp = now + CLIENT_TTL_MS;
      const credential = mintEgressCredential(this.#key, { tenant: this.#tenant, app: '*', instance: '*', exp });
      this.#current = { client: createEgressClient(this.#proxyUrl, credential), exp };
      if (old !== undefined) {
        this.#retired.add(old);
        setTimeout(() => void old.close().catch(() => {}).finally(() => this.#retired.delete(old)), CLIENT_DRAIN_MS).unref();
      }
    }
    return this.#current.client;
  }

  async close(): Promise<void> {
    const all = [...this.#retired, ...(this.#current ? [this.#current.client] : [])];
    this.#current = undefined;
    await Promise.all(all.map((c) => c.close().catch(() => {})));
  }
}
