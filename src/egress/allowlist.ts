/**
 * A tenant's network allowlist (CONTRACT §1 `network.allow`), parsed once at start-up.
 *
 * Rule forms: `host`, `host:port`, `*.suffix`, `*.suffix:port`, IPv4, `[v6]`, `[v6]:port`,
 * a bare v6, or a CIDR (`10.0.0.0/8`, `fd00::/8`, `[fd00::]/8:443`).
 *
 * Semantics (decided after smokescreen's per-role host globs and Deno's `--allow-net`):
 * - A rule without a port allows only the default port of the request's scheme
 *   (80 for `http:`, 443 for `https:`; a CONNECT tunnel, whose scheme the proxy cannot
 *   see, may use either). Any other port (22, 6379, 8080…) must be named: THREATS §D 33.
 * - `*.suffix` matches names with one or more labels before `.suffix`, never `suffix`
 *   itself (list both to allow both). The suffix needs at least two labels: `*.com` is
 *   rejected, and a lone `*` (allow everything) does not exist in a deny-by-default host.
 * - Hostname rules never match an IP literal, and never open a special-purpose address
 *   a name resolves to: only IP/CIDR rules do (see address.ts).
 * - Rule hosts are canonicalised like request hosts (case, IDNA, one trailing dot), so
 *   `API.Example.com.` and `api.example.com` are the same rule. IPv4 must be written as
 *   a dotted quad: `127.1` or `2130706433` as a rule is a config error, not an alias.
 */
import { IsohostError } from '../errors.ts';
import { normalizeHost } from './address.ts';
import { type Cidr, type Ip, cidrContains, parseCidr, parseIPv4, unmapIPv4 } from './ip.ts';

export type AllowRule =
  | { readonly kind: 'host'; readonly text: string; readonly host: string; readonly port: number | null }
  | { readonly kind: 'suffix'; readonly text: string; readonly suffix: string; readonly port: number | null }
  | { readonly kind: 'ip'; readonly text: string; readonly cidr: Cidr; readonly port: number | null };

/** `tunnel` is a CONNECT request: the proxy does not know whether TLS follows. */
export type Scheme = 'http' | 'https' | 'tunnel';

export interface MatchTarget {
  readonly host: string;
  readonly port: number;
  readonly scheme: Scheme;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

function invalid(text: string, why: string): IsohostError {
  return new IsohostError('config_invalid', `network.allow rule "${text}": ${why}`);
}

function parsePort(text: string, raw: string): number {
  if (!/^[1-9]\d{0,4}$/.test(raw) || Number(raw) > 65535) throw invalid(text, `port "${raw}" is not 1..65535`);
  return Number(raw);
}

function parseName(text: string, raw: string): string {
  if (raw.includes('*')) throw invalid(text, 'a wildcard is only allowed as a leading "*."');
  const normal = normalizeHost(raw);
  if (!normal) throw invalid(text, 'not a valid host name');
  if (normal.ip) throw invalid(text, 'IPv4 addresses must be written as a dotted quad (a.b.c.d)');
  const labels = normal.host.split('.');
  if (normal.host.length > 253 || !labels.every((l) => LABEL.test(l))) throw invalid(text, 'not a valid host name');
  return normal.host;
}

function ipRule(text: string, cidrText: string, port: number | null): AllowRule {
  const cidr = parseCidr(cidrText);
  if (!cidr) throw invalid(text, 'not a valid IP or CIDR (host bits must be zero)');
  return { kind: 'ip', text, cidr, port };
}

/**
 * Parses one rule; throws `config_invalid` naming the rule.
 *
 * @example
 * parseRule('*.cdn.acme.example:443') // { kind: 'suffix', suffix: 'cdn.acme.example', port: 443, … }
 * parseRule('127.0.0.1')              // { kind: 'ip', cidr: 127.0.0.1/32, port: null, … }
 */
export function parseRule(text: string): AllowRule {
  if (typeof text !== 'string') throw new IsohostError('config_invalid', 'network.allow rule: expected a string');
  if (text.length === 0 || text.length > 300 || /[\s\u0000-\u001f\u007f]/.test(text)) throw invalid(text, 'empty, too long or contains whitespace');
  if (text.startsWith('[')) {
    const m = /^\[([0-9a-fA-F:.]+)\](\/\d{1,3})?(?::([^:]*))?$/.exec(text);
    if (!m || !m[1].includes(':')) throw invalid(text, 'expected [v6], [v6]:port or [v6]/prefix');
    return ipRule(text, m[1] + (m[2] ?? ''), m[3] === undefined ? null : parsePort(text, m[3]));
  }
  if (text.includes('/')) return ipRule(text, text, null);
  const colons = text.split(':').length - 1;
  if (colons > 1) return ipRule(text, text, null); // a bare IPv6 address
  const [hostPart, portPart] = colons === 1 ? text.split(':') : [text, undefined];
  const port = portPart === undefined ? null : parsePort(text, portPart);
  if (hostPart.startsWith('*.')) {
    const suffix = parseName(text, hostPart.slice(2));
    if (!suffix.includes('.')) throw invalid(text, 'a wildcard suffix needs at least two labels (no "*.com")');
    return { kind: 'suffix', text, suffix, port };
  }
  if (parseIPv4(hostPart)) return ipRule(text, hostPart, port);
  return { kind: 'host', text, host: parseName(text, hostPart), port };
}

/** Parses a whole list; the first bad rule throws `config_invalid`. */
export function parseRules(texts: readonly string[]): readonly AllowRule[] {
  return Object.freeze(texts.map(parseRule));
}

function portAllowed(rule: AllowRule, port: number, scheme: Scheme): boolean {
  if (rule.port !== null) return rule.port === port;
  if (scheme === 'http') return port === 80;
  if (scheme === 'https') return port === 443;
  return port === 80 || port === 443;
}

/**
 * The first rule that allows `target`, or null (deny by default). `target.host` is
 * normalised here too, so a caller cannot get a match by skipping normalisation.
 * Never throws: an unparsable host matches nothing.
 *
 * @example
 * match(parseRules(['api.example.com']), { host: 'API.example.com.', port: 443, scheme: 'https' })
 */
export function match(rules: readonly AllowRule[], target: MatchTarget): AllowRule | null {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) return null;
  const normal = normalizeHost(target.host);
  if (!normal) return null;
  if (normal.ip) return matchIp(rules, normal.ip, target.port, target.scheme);
  for (const rule of rules) {
    if (!portAllowed(rule, target.port, target.scheme)) continue;
    if (rule.kind === 'host' && rule.host === normal.host) return rule;
    if (rule.kind === 'suffix' && normal.host.endsWith(`.${rule.suffix}`)) return rule;
  }
  return null;
}

/** The first IP/CIDR rule containing `ip` (v4-mapped v6 compared as v4) on this port, or null. */
export function matchIp(rules: readonly AllowRule[], ip: Ip, port: number, scheme: Scheme): AllowRule | null {
  const plain = unmapIPv4(ip);
  for (const rule of rules) {
    if (rule.kind === 'ip' && portAllowed(rule, port, scheme) && cidrContains(rule.cidr, plain)) return rule;
  }
  return null;
}
