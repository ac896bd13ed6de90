/**
 * IP literals as numbers, and CIDR containment. Hand-written rather than `net.BlockList`
 * because the egress checks must see *inside* addresses (IPv4-mapped, NAT64, 6to4)
 * and the rule matcher must compare a v4 rule against a v4-mapped v6 answer.
 * Inputs are canonical forms (WHATWG URL host or `dns.lookup` answers); anything
 * else returns null, never throws.
 */

export interface Ip {
  readonly family: 4 | 6;
  /** 32 or 128 bits, big-endian. */
  readonly value: bigint;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly prefix: number;
}

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/i;

/** Strict dotted-quad only (`127.1` or `0x7f.1` are the URL parser's job, not ours). */
export function parseIPv4(text: string): Ip | null {
  if (!V4.test(text)) return null;
  let value = 0n;
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
  return { family: 4, value };
}

/** RFC 4291 §2.2 text forms, including `::` and a trailing dotted quad. No zone id. */
export function parseIPv6(text: string): Ip | null {
  if (text.length === 0 || text.length > 45 || text.includes('%')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const toGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return null;
        out.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
      } else if (HEX_GROUP.test(p)) out.push(parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const left = toGroups(halves[0]);
  const right = halves.length === 2 ? toGroups(halves[1]) : [];
  if (!left || !right) return null;
  // A dotted quad may only end the address.
  if (halves.length === 2 && halves[0].includes('.')) return null;
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...right];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return { family: 6, value };
}

/** `1.2.3.4`, `::1`, `[::1]` (URL host form). Null for anything else, including zone ids. */
export function parseIp(text: string): Ip | null {
  if (text.startsWith('[') && text.endsWith(']')) return parseIPv6(text.slice(1, -1));
  return parseIPv4(text) ?? (text.includes(':') ? parseIPv6(text) : null);
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare IP (a /32 or /128). Host bits must be zero. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > max) return null;
    prefix = Number(p);
  }
  if ((ip.value & ~mask(ip.family, prefix)) !== 0n) return null;
  return { family: ip.family, base: ip.value, prefix };
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = family === 4 ? 32n : 128n;
  const all = (1n << bits) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  return cidr.family === ip.family && (ip.value & mask(ip.family, cidr.prefix)) === cidr.base;
}

/** `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2) is the IPv4 endpoint a.b.c.d; other IPs unchanged. */
export function unmapIPv4(ip: Ip): Ip {
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return { family: 4, value: ip.value & 0xffffffffn };
  return ip;
}

export function formatIp(ip: Ip): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((ip.value >> s) & 0xffffn).toString(16));
  // The WHATWG URL serializer already implements RFC 5952 compression.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
