/**
 * Host normalisation and special-purpose address classification for the egress proxy.
 *
 * Normalisation is delegated to the WHATWG URL parser (Node's `URL`) so that the host
 * the policy matches is byte-for-byte the host a URL-based client would connect to:
 * it canonicalises `127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`, case, IDNA (`。`,
 * unicode labels to punycode) and IPv6 compression (THREATS §D 29–30). Then one
 * trailing dot is stripped for matching (`allowed.example.` is `allowed.example`).
 *
 * Classification follows the IANA special-purpose registries (RFC 6890 and updates)
 * and smokescreen's default deny list: anything that is not ordinary global unicast
 * is "special" and is reachable only through an IP/CIDR rule naming it.
 */
import { type Cidr, type Ip, cidrContains, parseCidr, parseIp, unmapIPv4 } from './ip.ts';

export interface NormalHost {
  /** Canonical host for matching: lower-case punycode name without trailing dot, dotted quad, or `[v6]`. */
  readonly host: string;
  /** The IP when the host is an IP literal (IPv4-mapped v6 already unmapped), else null. */
  readonly ip: Ip | null;
}

// Characters that would make `http://${host}/` parse as something else than a host
// (userinfo, path, query, fragment; `\` is a path separator for special schemes).
const NOT_A_HOST = /[@/\\?#\s\u0000-\u001f\u007f]/;

/**
 * Canonicalises a bare host (no port, no userinfo) as the URL parser would.
 * Returns null when the URL parser rejects it (e.g. `[fe80::1%25eth0]`: zone ids are
 * not valid in URLs) or when it contains characters that would change the parse.
 *
 * @example
 * normalizeHost('0x7f.1')            // { host: '127.0.0.1', ip: {family: 4, …} }
 * normalizeHost('ALLOWED。example.') // { host: 'allowed.example', ip: null }
 */
export function normalizeHost(raw: string): NormalHost | null {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 300 || NOT_A_HOST.test(raw)) return null;
  // A ':' outside brackets would be taken as a port separator (and `:80` then dropped as default).
  if (raw.startsWith('[') ? !raw.endsWith(']') : raw.includes(':')) return null;
  let url: URL;
  try {
    url = new URL(`http://${raw}/`);
  } catch {
    return null;
  }
  if (url.port !== '' || url.username !== '' || url.password !== '') return null;
  return fromUrlHostname(url.hostname);
}

/** The same normalisation for a hostname that already came out of `new URL()`. */
export function fromUrlHostname(hostname: string): NormalHost | null {
  let host = hostname.toLowerCase();
  if (host.endsWith('.') && !host.startsWith('[')) host = host.slice(0, -1);
  if (host === '' || host.endsWith('.')) return null;
  const parsed = parseIp(host);
  return { host, ip: parsed ? unmapIPv4(parsed) : null };
}

type Range = readonly [Cidr, string];
const table = (rows: [string, string][]): Range[] =>
  rows.map(([cidr, label]) => {
    const parsed = parseCidr(cidr);
    if (!parsed) throw new Error(`bad built-in range ${cidr}`);
    return [parsed, label] as const;
  });

// Order matters: the first containing range names the category.
const V4_RANGES = table([
  ['169.254.169.254/32', 'metadata'], // AWS/GCP/Azure/OpenStack instance metadata
  ['168.63.129.16/32', 'metadata'], // Azure wireserver (a public-looking platform address)
  ['0.0.0.0/8', 'unspecified'], // RFC 791 "this network"; 0.0.0.0 reaches localhost on Linux
  ['10.0.0.0/8', 'private'], // RFC 1918
  ['100.64.0.0/10', 'cgnat'], // RFC 6598 shared address space (also Alibaba metadata)
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'], // RFC 3927
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'ietf-protocol'], // RFC 6890
  ['192.0.2.0/24', 'documentation'], // RFC 5737
  ['192.88.99.0/24', '6to4-relay'], // RFC 7526 (deprecated anycast)
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmark'], // RFC 2544
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'], // RFC 1112 class E
]);

const V6_RANGES = table([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'ipv4-compatible'], // RFC 4291 §2.5.5.1, deprecated; `[::127.0.0.1]`
  ['64:ff9b::/96', 'nat64'], // RFC 6052: would reach the embedded IPv4 (smokescreen denies it)
  ['64:ff9b:1::/48', 'nat64'], // RFC 8215 local-use NAT64
  ['100::/64', 'discard'], // RFC 6666
  ['2001:db8::/32', 'documentation'], // RFC 3849
  ['2001::/23', 'ietf-protocol'], // RFC 2928: Teredo (2001::/32), ORCHID, AMT…
  ['3fff::/20', 'documentation'], // RFC 9637
  ['5f00::/16', 'srv6'], // RFC 9602 segment identifiers
  ['fd00:ec2::254/128', 'metadata'], // AWS IMDS over IPv6
  ['fc00::/7', 'private'], // RFC 4193 unique local
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'], // RFC 3879, deprecated
  ['ff00::/8', 'multicast'],
]);

const SIX_TO_FOUR = parseCidr('2002::/16') as Cidr;
const GLOBAL_UNICAST = parseCidr('2000::/3') as Cidr;

/**
 * The special-purpose category of an IP, or null for ordinary global unicast.
 * IPv4-mapped v6 is classified as its IPv4; 6to4 (RFC 3056) by its embedded IPv4,
 * so `[2002:a9fe:a9fe::]` is `6to4:metadata`.
 *
 * @example
 * classifyIp(parseIp('[::ffff:a9fe:a9fe]')!) // 'metadata'
 */
export function classifyIp(input: Ip): string | null {
  const ip = unmapIPv4(input);
  const ranges = ip.family === 4 ? V4_RANGES : V6_RANGES;
  for (const [cidr, label] of ranges) if (cidrContains(cidr, ip)) return label;
  if (ip.family === 4) return null;
  if (cidrContains(SIX_TO_FOUR, ip)) {
    const inner = classifyIp({ family: 4, value: (ip.value >> 80n) & 0xffffffffn });
    return inner === null ? null : `6to4:${inner}`;
  }
  return cidrContains(GLOBAL_UNICAST, ip) ? null : 'reserved';
}

/** Parses an address as `dns.lookup` returns it (a zone id makes it link-local by definition). */
export function parseResolvedAddress(address: string): Ip | null {
  const zone = address.indexOf('%');
  const ip = parseIp(zone === -1 ? address : address.slice(0, zone));
  return ip ? unmapIPv4(ip) : null;
}
