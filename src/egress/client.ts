/**
 * The host's side of talking to the egress proxy: an undici `ProxyAgent` carrying one
 * call's credential, plus a decoder for the proxy's own refusals.
 *
 * Transport choice (undici's default, kept on purpose): `http:` targets go to the proxy
 * in absolute-form (RFC 9112 §3.2.2), so the proxy sees and re-filters the request
 * headers; `https:` targets use a CONNECT tunnel, so TLS stays end to end and the proxy
 * decides on `host:port` alone. Both paths are checked by the same policy.
 *
 * undici reports a refused CONNECT only as "Proxy response (403) !== 200 when HTTP
 * Tunneling" and drops the answer's headers; `clientFactory` wraps the proxy pool's
 * `connect()` to keep the proxy's `X-Isohost-Egress-*` reason for the guest's error.
 */
import { type Dispatcher, Pool, ProxyAgent } from 'undici';
import { EGRESS_ERROR_HEADER, EGRESS_MESSAGE_HEADER } from './headers.ts';

export interface ProxyRefusal {
  readonly code: 'egress_denied' | 'egress_failed' | 'unauthenticated';
  readonly message: string;
}

export interface EgressClient {
  readonly agent: ProxyAgent;
  /** The refusal the proxy gave to a CONNECT for `authority` (`host:port`), taken once. */
  takeRefusal(authority: string): ProxyRefusal | undefined;
  close(): Promise<void>;
}

type Headers = Record<string, string | string[] | undefined>;

/** Decodes a proxy answer; undefined when the answer did not come from the proxy itself. */
export function proxyRefusal(status: number, headers: Headers): ProxyRefusal | undefined {
  const code = headers[EGRESS_ERROR_HEADER];
  const message = headers[EGRESS_MESSAGE_HEADER];
  if (code !== 'egress_denied' && code !== 'egress_failed' && code !== 'unauthenticated') {
    if (status === 407) return { code: 'unauthenticated', message: 'the egress proxy refused the call credential' };
    return undefined;
  }
  return { code, message: typeof message === 'string' ? message : `the egress proxy answered ${status}` };
}

/**
 * @example
 * const client = createEgressClient('http://127.0.0.1:8081', credential);
 * const res = await client.agent.request({ origin: 'http://api.test', path: '/', method: 'GET' });
 * await client.close();
 */
export function createEgressClient(proxyUrl: string, credential: string): EgressClient {
  const refusals = new Map<string, ProxyRefusal>();
  const agent = new ProxyAgent({
    uri: proxyUrl,
    token: `Bearer ${credential}`,
    clientFactory: (origin: URL, opts: object) => {
      const pool = new Pool(origin, opts);
      const connect = pool.connect.bind(pool) as (o: Dispatcher.ConnectOptions) => Promise<Dispatcher.ConnectData>;
      const recording = async (options: Dispatcher.ConnectOptions): Promise<Dispatcher.ConnectData> => {
        const data = await connect(options);
        if (data.statusCode !== 200) {
          refusals.set(options.path, proxyRefusal(data.statusCode, data.headers) ?? { code: 'egress_failed', message: `the egress proxy answered ${data.statusCode}` });
        }
        return data;
      };
      // ProxyAgent calls connect() in promise form only (lib/dispatcher/proxy-agent.js).
      Object.defineProperty(pool, 'connect', { value: recording });
      return pool;
    },
  });
  return {
    agent,
    takeRefusal(authority) {
      const refusal = refusals.get(authority);
      refusals.delete(authority);
      return refusal;
    },
    close: () => agent.destroy(),
  };
}
