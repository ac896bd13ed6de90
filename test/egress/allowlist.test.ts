import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AllowRule, type Scheme, match, parseRule, parseRules } from '../../src/egress/allowlist.ts';
import { classifyIp, normalizeHost } from '../../src/egress/address.ts';
import { IsohostError } from '../../src/errors.ts';
import { cidrContains, formatIp, parseCidr, parseIp } from '../../src/egress/ip.ts';

const rules = parseRules([
  'api.acme-partner.com', '*.cdn.acme.example:443', 'plain.example:8080', '127.0.0.1', '10.1.0.0/16', '[::1]:9000', 'fd00::/8', 'bücher.example',
]);
const hit = (host: string, port: number, scheme: Scheme = 'http') => match(rules, { host, port, scheme })?.text ?? null;

describe('allowlist: parseRule', () => {
  it.each([
    ['api.example.com', { kind: 'host', host: 'api.example.com', port: null }],
    ['API.Example.com.', { kind: 'host', host: 'api.example.com', port: null }],
    ['api.example.com:8443', { kind: 'host', host: 'api.example.com', port: 8443 }],
    ['*.cdn.example.com', { kind: 'suffix', suffix: 'cdn.example.com', port: null }],
    ['*.cdn.example.com:443', { kind: 'suffix', suffix: 'cdn.example.com', port: 443 }],
    ['bücher.example', { kind: 'host', host: 'xn--bcher-kva.example', port: null }],
    ['127.0.0.1', { kind: 'ip', port: null }],
    ['127.0.0.1:8080', { kind: 'ip', port: 8080 }],
    ['[::1]', { kind: 'ip', port: null }],
    ['[::1]:443', { kind: 'ip', port: 443 }],
    ['::1', { kind: 'ip', port: null }],
    ['10.0.0.0/8', { kind: 'ip', port: null }],
    ['fd00::/8', { kind: 'ip', port: null }],
    ['[fd00::]/8:443', { kind: 'ip', port: 443 }],
  ])('should parse %s', (text, expected) => {
    expect(parseRule(text)).toMatchObject({ text, ...expected });
  });

  it.each([
    '', ' api.example.com', 'api example.com', '*', '*.com', 'a.*.example.com', 'api.example.com:0', 'api.example.com:65536',
    'api.example.com:08', 'api.example.com:http', '127.1', '2130706433', '0x7f.1', '10.0.0.1/8', '10.0.0.0/33', '[::1', '[1.2.3.4]',
    '[::1]:', 'fd00::1/8', 'a..b', '-a.example', 'http://api.example.com', 'user@api.example.com', 'api.example.com/path', '[fe80::1%eth0]',
  ])('should reject %j with config_invalid naming the rule', (text) => {
    const err = (() => { try { parseRule(text); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('config_invalid');
    expect((err as IsohostError).message).toContain(`"${text}"`);
  });
});

describe('allowlist: match', () => {
  it.each([
    // exact host, default port of the scheme only
    ['api.acme-partner.com', 80, 'http', 'api.acme-partner.com'],
    ['api.acme-partner.com', 443, 'https', 'api.acme-partner.com'],
    ['api.acme-partner.com', 443, 'http', null],
    ['api.acme-partner.com', 80, 'https', null],
    ['api.acme-partner.com', 443, 'tunnel', 'api.acme-partner.com'],
    ['api.acme-partner.com', 22, 'tunnel', null],
    ['api.acme-partner.com', 6379, 'http', null],
    ['API.ACME-partner.com.', 80, 'http', 'api.acme-partner.com'],
    ['api.acme-partner.com.evil.test', 80, 'http', null],
    ['evilapi.acme-partner.com', 80, 'http', null],
    ['x.api.acme-partner.com', 80, 'http', null],
    // wildcard: subdomains at any depth, not the bare suffix, named port only
    ['a.cdn.acme.example', 443, 'https', '*.cdn.acme.example:443'],
    ['a.b.cdn.acme.example', 443, 'tunnel', '*.cdn.acme.example:443'],
    ['cdn.acme.example', 443, 'https', null],
    ['a.cdn.acme.example', 80, 'http', null],
    ['acdn.acme.example', 443, 'https', null],
    ['plain.example', 8080, 'http', 'plain.example:8080'],
    ['plain.example', 80, 'http', null],
    // IP rules match IP literals in any URL spelling; hostname rules never do
    ['127.0.0.1', 80, 'http', '127.0.0.1'],
    ['127.1', 80, 'http', '127.0.0.1'],
    ['0x7f000001', 80, 'http', '127.0.0.1'],
    ['[::ffff:127.0.0.1]', 80, 'http', '127.0.0.1'],
    ['127.0.0.2', 80, 'http', null],
    ['127.0.0.1', 8080, 'http', null],
    ['10.1.2.3', 80, 'http', '10.1.0.0/16'],
    ['10.2.0.1', 80, 'http', null],
    ['[::1]', 9000, 'http', '[::1]:9000'],
    ['[::1]', 80, 'http', null],
    ['[fd12::1]', 443, 'https', 'fd00::/8'],
    ['xn--bcher-kva.example', 443, 'https', 'bücher.example'],
    ['bücher.example', 443, 'https', 'bücher.example'],
    // garbage never matches and never throws
    ['', 80, 'http', null],
    ['allowed.example@127.0.0.1', 80, 'http', null],
    ['[fe80::1%25eth0]', 80, 'http', null],
    ['[x.cdn.acme.example', 443, 'https', null],
    ['api.acme-partner.com', 0, 'http', null],
  ] as const)('should match %s:%i (%s) → %s', (host, port, scheme, expected) => {
    expect(hit(host, port, scheme)).toBe(expected);
  });

  it('should never match anything with an empty list (deny by default)', () => {
    expect(match([], { host: 'api.acme-partner.com', port: 443, scheme: 'https' })).toBeNull();
  });
});

describe('address: normalisation and classification', () => {
  it.each([
    ['0x7f.1', '127.0.0.1'], ['2130706433', '127.0.0.1'], ['0177.0.0.1', '127.0.0.1'], ['0', '0.0.0.0'],
    ['ALLOWED。example.', 'allowed.example'], ['[0:0:0:0:0:ffff:7f00:1]', '[::ffff:7f00:1]'],
  ])('should normalise %s to %s', (raw, host) => {
    expect(normalizeHost(raw)?.host).toBe(host);
  });

  it.each(['a@b', 'a/b', 'a#b', 'a\\b', 'a:80', '[fe80::1%25eth0]', '', '.', 'a b'])('should refuse %j', (raw) => {
    expect(normalizeHost(raw)).toBeNull();
  });

  it.each([
    ['127.0.0.1', 'loopback'], ['0.0.0.0', 'unspecified'], ['10.9.9.9', 'private'], ['172.31.255.255', 'private'], ['172.32.0.1', null],
    ['192.168.1.1', 'private'], ['100.64.0.1', 'cgnat'], ['100.128.0.1', null], ['169.254.169.254', 'metadata'], ['169.254.1.1', 'link-local'],
    ['224.0.0.1', 'multicast'], ['255.255.255.255', 'broadcast'], ['198.18.0.1', 'benchmark'], ['203.0.113.9', 'documentation'],
    ['8.8.8.8', null], ['::1', 'loopback'], ['::', 'unspecified'], ['::ffff:a9fe:a9fe', 'metadata'], ['::ffff:8.8.8.8', null],
    ['::7f00:1', 'ipv4-compatible'], ['64:ff9b::a9fe:a9fe', 'nat64'], ['64:ff9b::808:808', 'nat64'], ['2002:a9fe:a9fe::', '6to4:metadata'],
    ['2002:808:808::', null], ['2002:7f00:1::', '6to4:loopback'], ['fd00:ec2::254', 'metadata'], ['fc00::1', 'private'],
    ['fe80::1', 'link-local'], ['ff02::1', 'multicast'], ['2001:db8::1', 'documentation'], ['2001::1', 'ietf-protocol'],
    ['2606:4700::1111', null], ['4000::1', 'reserved'],
  ])('should classify %s as %s', (text, category) => {
    expect(classifyIp(parseIp(text)!)).toBe(category);
  });
});

// ---- properties -------------------------------------------------------------------------

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ruleText = fc.oneof(
  name.map((n) => `${n}.example`),
  fc.tuple(name, fc.integer({ min: 1, max: 65535 })).map(([n, p]) => `${n}.test:${p}`),
  name.map((n) => `*.${n}.example`),
  ipv4,
  fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([ip, p]) => `${ip}/${p}`),
  fc.string(),
);
const hostish = fc.oneof(name, name.map((n) => `${n}.example`), ipv4, fc.string(), fc.ipV6().map((v) => `[${v}]`), fc.webUrl().map((u) => new URL(u).hostname));
const scheme = fc.constantFrom<Scheme>('http', 'https', 'tunnel');
const port = fc.oneof(fc.constantFrom(80, 443, 8080), fc.integer({ min: -5, max: 70000 }));

function tryParse(texts: string[]): AllowRule[] {
  const out: AllowRule[] = [];
  for (const t of texts) {
    try { out.push(parseRule(t)); } catch (e) { if (!(e instanceof IsohostError)) throw e; }
  }
  return out;
}

// An independent oracle: does `host` fit the rule's own text?
function fitsText(rule: AllowRule, host: string): boolean {
  const normal = normalizeHost(host)!;
  const text = rule.text.replace(/:\d+$/, '');
  if (rule.kind === 'ip') return normal.ip !== null && cidrContains(parseCidr(text.replace(/^\[|\]/g, ''))!, normal.ip);
  if (rule.kind === 'host') return normal.ip === null && normal.host === normalizeHost(text)!.host;
  return normal.ip === null && normal.host.endsWith(`.${normalizeHost(text.slice(2))!.host}`);
}

describe('allowlist: properties (fast-check)', () => {
  it('should throw only IsohostError(config_invalid) from parseRule, for any string', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), ruleText), (text) => {
      try { parseRule(text); } catch (e) {
        return e instanceof IsohostError && e.code === 'config_invalid';
      }
      return true;
    }), { numRuns: 2000 });
  });

  it('should never throw from match, whatever the target', () => {
    fc.assert(fc.property(fc.array(ruleText, { maxLength: 6 }), hostish, port, scheme, (texts, host, p, s) => {
      const r = match(tryParse(texts), { host, port: p, scheme: s });
      return r === null || typeof r.text === 'string';
    }), { numRuns: 2000 });
  });

  it("should match a host against another tenant's list only through a rule whose text it fits", () => {
    fc.assert(fc.property(fc.array(ruleText, { maxLength: 6 }), fc.array(ruleText, { maxLength: 6 }), fc.nat(), label, hostish, port, scheme, (a, b, pick, sub, other, p, s) => {
      const listA = tryParse(a);
      const listB = tryParse(b);
      // Hosts tenant A is allowed to reach (its names, subdomains of its wildcards), or anything.
      const fromA = listA.flatMap((r) => (r.kind === 'host' ? [r.host] : r.kind === 'suffix' ? [`${sub}.${r.suffix}`] : []));
      const host = fromA.length > 0 && pick % 3 !== 0 ? fromA[pick % fromA.length] : other;
      const got = match(listB, { host, port: p, scheme: s });
      if (got === null) return true;
      return listB.includes(got) && fitsText(got, host);
    }), { numRuns: 3000 });
  });

  it('should round-trip every IP through parse/format', () => {
    fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
      const ip = parseIp(text);
      return ip !== null && parseIp(formatIp(ip))?.value === ip.value;
    }), { numRuns: 2000 });
  });
});
