/**
 * One egress decision, in smokescreen's order:
 *   1. normalise the host and match the tenant's rules — BEFORE any DNS query, so a
 *      denied name (`<secret>.evil.test`) is never resolved (THREATS §D 35);
 *   2. resolve (IP literals are not resolved);
 *   3. if ANY answer is special-purpose and not named by an IP/CIDR rule, deny — a
 *      name with mixed public/private records is denied (THREATS §D 31);
 *   4. return the exact address that was checked; the caller connects to it and never
 *      resolves again (no DNS rebinding between check and connect).
 */
import { lookup } from 'node:dns/promises';
import { classifyIp, normalizeHost, parseResolvedAddress } from './address.ts';
import { type AllowRule, type Scheme, match, matchIp } from './allowlist.ts';
import { type Ip, formatIp } from './ip.ts';

/** Maps a normalised host name to its addresses. Tests inject one mapping names to 127.0.0.1. */
export type Resolver = (host: string) => Promise<readonly string[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, order: 'verbatim' })).map((a) => a.address);

export type Decision =
  | { readonly allow: true; readonly host: string; readonly rule: AllowRule; readonly ip: Ip; readonly address: string }
  | {
      readonly allow: false;
      readonly host: string;
      /** `egress_denied` (403) for policy, `egress_failed` (502) for DNS trouble. */
      readonly code: 'egress_denied' | 'egress_failed';
      /** Safe to show the tenant: names the host and the reason, never an address it did not send. */
      readonly reason: string;
      /** For the audit log only. */
      readonly addresses?: readonly string[];
    };

export interface DecideOptions {
  readonly resolver: Resolver;
  /** DNS answers slower than this fail the request. Default 5000 ms. */
  readonly resolveTimeoutMs?: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('DNS lookup timed out')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Decides whether `host:port` may be reached under `rules`.
 *
 * @example
 * await decide(parseRules(['api.test', '127.0.0.1']), 'api.test', 80, 'http', { resolver: async () => ['127.0.0.1'] })
 * // → { allow: true, address: '127.0.0.1', rule: { text: 'api.test', … }, … }
 */
export async function decide(rules: readonly AllowRule[], rawHost: string, port: number, scheme: Scheme, opts: DecideOptions): Promise<Decision> {
  const normal = normalizeHost(rawHost);
  if (!normal) return { allow: false, host: String(rawHost).slice(0, 100), code: 'egress_denied', reason: 'the host is not a valid URL host' };
  const { host } = normal;
  const rule = match(rules, { host, port, scheme });
  if (!rule) return { allow: false, host, code: 'egress_denied', reason: `no network.allow rule matches ${host}:${port}` };

  let answers: readonly string[];
  if (normal.ip) answers = [formatIp(normal.ip)];
  else {
    try {
      answers = await withTimeout(opts.resolver(host), opts.resolveTimeoutMs ?? 5000);
    } catch {
      return { allow: false, host, code: 'egress_failed', reason: `DNS lookup of ${host} failed` };
    }
  }
  const ips: Ip[] = [];
  for (const answer of answers) {
    const ip = typeof answer === 'string' ? parseResolvedAddress(answer) : null;
    if (!ip) return { allow: false, host, code: 'egress_failed', reason: `DNS lookup of ${host} returned an unusable answer`, addresses: answers };
    ips.push(ip);
  }
  if (ips.length === 0) return { allow: false, host, code: 'egress_failed', reason: `DNS lookup of ${host} returned no address` };

  for (const ip of ips) {
    const category = classifyIp(ip);
    if (category !== null && !matchIp(rules, ip, port, scheme)) {
      const what = normal.ip ? `${host} is a ${category} address` : `${host} resolves to a ${category} address`;
      return { allow: false, host, code: 'egress_denied', reason: `${what}; only an IP/CIDR rule can open it`, addresses: answers };
    }
  }
  return { allow: true, host, rule, ip: ips[0], address: formatIp(ips[0]) };
}
