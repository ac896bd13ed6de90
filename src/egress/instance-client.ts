/**
 * The one way host code reaches the egress proxy for a mini-app instance (issue 11: one
 * credential path, the same in production and in tests). Each instance's fetch binding
 * holds one of these: a proxy client whose credential names the tenant, the app and the
 * instance, reused across the instance's calls so keep-alive connections to the proxy
 * live as long as the instance (a new client per call cost ~3.5 ms per fetch), and
 * replaced before its credential expires.
 *
 * Because the credential itself names app and instance, the proxy's audit line names them
 * for every request, `http:` (absolute-form) and `https:` (a CONNECT tunnel, where the
 * proxy sees no request headers) alike. The credential never enters an isolate.
 */
import { createEgressClient, type EgressClient } from './client.ts';
import { mintEgressCredential } from './credential.ts';

/** Credential lifetime, and how long before expiry it is replaced. */
const CLIENT_TTL_MS = 15 * 60_000;
const CLIENT_RENEW_MS = 5 * 60_000;
/** A replaced client keeps serving requests already under way for this long. */
const CLIENT_DRAIN_MS = 60_000;

/** Who is calling: the binding's CallScope carries these. */
export interface EgressCaller {
  readonly appId: string;
  readonly instanceId: string;
}

export class InstanceEgressClient {
  readonly #proxyUrl: string;
  readonly #key: Uint8Array;
  readonly #tenant: string;
  #current: { client: EgressClient; app: string; instance: string; exp: number } | undefined;

  /**
   * @example
   * const egress = new InstanceEgressClient(proxyUrl, credentialKey, 'bu-a');
   * const res = await egress.for(scope).agent.request({ origin: 'http://api.test', path: '/', method: 'GET' });
   */
  constructor(proxyUrl: string, key: Uint8Array, tenant: string) {
    this.#proxyUrl = proxyUrl;
    this.#key = key;
    this.#tenant = tenant;
  }

  /** The client for `caller`'s requests; a new one when the credential nears expiry. */
  for(caller: EgressCaller): EgressClient {
    const now = Date.now();
    const c = this.#current;
    if (c !== undefined && c.exp - now >= CLIENT_RENEW_MS && c.app === caller.appId && c.instance === caller.instanceId) return c.client;
    const exp = now + CLIENT_TTL_MS;
    const credential = mintEgressCredential(this.#key, { tenant: this.#tenant, app: caller.appId, instance: caller.instanceId, exp });
    this.#current = { client: createEgressClient(this.#proxyUrl, credential), app: caller.appId, instance: caller.instanceId, exp };
    if (c !== undefined) setTimeout(() => void c.client.close().catch(() => {}), CLIENT_DRAIN_MS).unref();
    return this.#current.client;
  }
}
