/**
 * The egress proxy on its own, spoken to over raw sockets so the request targets are
 * exactly the attack strings (no client normalises them first). THREATS.md §D 29–35.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintEgressCredential } from '../../src/egress/credential.ts';
import { ADDRESS_FORMS, type TestProxy, type Upstream, rawRequest, startTestProxy, startUpstream, watchConnections } from '../helpers/egress-fixtures.ts';

let up: Upstream; // 127.0.0.1:P — the loopback server most tests aim at
let good: Upstream; // 127.0.0.2:G — what allowed.example resolves to in the parser-confusion tests
let t: TestProxy;
let P: number;

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    if (req.url === '/redirect') { res.writeHead(302, { location: 'http://10.0.0.1/' }); res.end(); return; }
    res.setHeader('x-isohost-egress-error', 'egress_denied'); // a hostile upstream faking a proxy refusal
    res.setHeader('proxy-authenticate', 'Basic');
    res.end('ok from up');
  });
  P = up.port;
  t = await startTestProxy({
    a: { rules: [`api.test:${P}`, `mixed.test:${P}`, `127.0.0.1:${P}`, `*.wild.test:${P}`, `down.test:${P - 1 || 1}`, `127.0.0.1:${P - 1 || 1}`] },
    b: { rules: [`other.test:${P}`] },
    strict: { rules: [`api.test:${P}`, 'allowed.example'] },
    conf: { rules: [`allowed.example:${P}`, `127.0.0.2:${P}`] },
  }, { 'mixed.test': ['127.0.0.1', '10.0.0.5'], 'allowed.example': ['127.0.0.2'] });
  // `good` listens on 127.0.0.2 with the same port number as `up`, for the confusion cases.
  good = await startUpstream('good', undefined, { host: '127.0.0.2', port: P });
});
afterAll(async () => { await Promise.all([up.close(), good.close(), t.close()]); });

const get = (target: string, cred: string | null, extra: string[] = []) =>
  rawRequest(t.proxy.port, [`GET ${target} HTTP/1.1`, `Host: ${new URL('http://x').host}`, ...(cred ? [`Proxy-Authorization: Bearer ${cred}`] : []), 'Connection: close', ...extra]);
const connectTo = (authority: string, cred: string | null) =>
  rawRequest(t.proxy.port, [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, ...(cred ? [`Proxy-Authorization: Bearer ${cred}`] : [])]);
const withPort = (form: string) => form.replace('PORT', String(P));
const authorityOf = (form: string) => { const a = /^http:\/\/([^/]+)\//.exec(withPort(form))![1]; return /(:\d+)$/.test(a) && !a.endsWith(']') ? a : `${a}:80`; };

describe('egress proxy: §D 29 address forms, tenant without IP rules', () => {
  it.each(ADDRESS_FORMS)('should deny absolute-form %s before connecting', async (form) => {
    const before = up.requests.length;
    const watch = watchConnections();
    const res = await get(withPort(form), t.credential('strict'));
    watch.stop();
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe('egress_denied');
    expect(watch.attempts.filter((a) => !a.endsWith(`:${t.proxy.port}`))).toEqual([]);
    expect(up.requests.length).toBe(before);
  });

  it.each(ADDRESS_FORMS)('should deny CONNECT to the authority of %s before connecting', async (form) => {
    const before = up.connections;
    const watch = watchConnections();
    const res = await connectTo(authorityOf(form), t.credential('strict'));
    watch.stop();
    expect(res.status).toBe(403);
    expect(res.headers['x-isohost-egress-error']).toBe('egress_denied');
    expect(watch.attempts.filter((a) => !a.endsWith(`:${t.proxy.port}`))).toEqual([]);
    expect(up.connections).toBe(before);
  });

  it('should allow the loopback upstream through an IP rule naming 127.0.0.1, in any spelling', async () => {
    for (const host of ['127.0.0.1', '127.1', '2130706433', '0x7f.1', '[::ffff:127.0.0.1]']) {
      const res = await get(`http://${host}:${P}/x`, t.credential('a'));
      expect(res.status, host).toBe(200);
      expect(res.body).toBe('ok from up');
    }
  });
});

describe('egress proxy: DNS (§D 31, 35)', () => {
  it('should deny a name that resolves to loopback without an IP rule, and allow it with one', async () => {
    const denied = await get(`http://api.test:${P}/`, t.credential('strict'));
    expect(denied.status).toBe(403);
    expect(denied.headers['x-isohost-egress-message']).toMatch(/api\.test resolves to a loopback address/);
    const allowed = await get(`http://api.test:${P}/`, t.credential('a'));
    expect(allowed.status).toBe(200);
  });

  // The first answer is loopback and named by an IP rule; the second is private and not:
  // checking only the first answer would connect (to loopback, harmlessly) and fail here.
  it('should deny a name when any answer is special-purpose and not named', async () => {
    const res = await get(`http://mixed.test:${P}/`, t.credential('a'));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.message).toMatch(/mixed\.test resolves to a private address/);
  });

  it('should never resolve a denied name (no DNS exfiltration)', async () => {
    const name = `secret-${randomBytes(4).toString('hex')}.evil.test`;
    expect((await get(`http://${name}:${P}/`, t.credential('a'))).status).toBe(403);
    expect((await connectTo(`${name}:443`, t.credential('a'))).status).toBe(403);
    expect(t.lookups).not.toContain(name);
  });

  it('should answer 502 egress_failed when the name does not resolve or the upstream is down', async () => {
    const down = await get(`http://127.0.0.1:${P - 1 || 1}/`, t.credential('a'));
    expect(down.status).toBe(502);
    expect(JSON.parse(down.body).error.code).toBe('egress_failed');
  });
});

describe('egress proxy: §D 30 parser confusion', () => {
  it.each([
    [`http://allowed.example@127.0.0.1:PORT/`, 403],
    [`http://allowed.example.evil.test:PORT/`, 403],
    [`http://127.0.0.1:PORT#@allowed.example/`, 400], // '#' is not a valid request-target byte: Node's parser refuses
    [`http://allowed.example\\@127.0.0.1:PORT/`, 400], // '\' likewise; through a URL client it is a path (see fetch tests)
    [`http://allowed\u3002example:PORT/`, 400], // raw UTF-8 likewise
  ])('should not reach 127.0.0.1 for %s (status %i)', async (target, status) => {
    const before = up.requests.length;
    const res = await get(withPort(target), t.credential('conf'));
    expect(res.status).toBe(status);
    expect(up.requests.length).toBe(before);
  });

  it.each([`http://allowed.example.:PORT/`, `http://ALLOWED.example:PORT/`, `http://allowed%E3%80%82example:PORT/`, `http://allowed.example:PORT/@127.0.0.1/`])(
    'should match and connect to the same normalised host for %s', async (target) => {
      const before = good.requests.length;
      const res = await get(withPort(target), t.credential('conf'));
      expect(res.status).toBe(200);
      expect(res.body).toBe('ok from good');
      expect(good.requests.length).toBe(before + 1);
      expect(good.requests.at(-1)!.headers.host).toMatch(/^allowed\.example\.?:\d+$/i);
    });
});

describe('egress proxy: per-tenant rules, ports, wildcards, schemes (§D 33)', () => {
  it('should allow a URL for tenant a and deny it for tenant b', async () => {
    expect((await get(`http://api.test:${P}/`, t.credential('a'))).status).toBe(200);
    const res = await get(`http://api.test:${P}/`, t.credential('b'));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.message).toContain(`no network.allow rule matches api.test:${P}`);
  });

  it('should deny a tenant the proxy was not given (deny by default)', async () => {
    expect((await get(`http://api.test:${P}/`, t.credential('ghost'))).status).toBe(403);
  });

  it('should deny allowed hosts on unlisted ports', async () => {
    for (const port of [22, 6379, 80, 443]) expect((await get(`http://api.test:${port}/`, t.credential('a'))).status).toBe(403);
    for (const port of [22, 6379]) expect((await connectTo(`api.test:${port}`, t.credential('a'))).status).toBe(403);
  });

  it('should allow subdomains of a wildcard rule and not the bare suffix', async () => {
    expect((await get(`http://x.y.wild.test:${P}/`, t.credential('a'))).status).toBe(200);
    expect((await get(`http://wild.test:${P}/`, t.credential('a'))).status).toBe(403);
  });

  it.each([`https://api.test:${0}/`, 'ftp://api.test/', 'file:///etc/passwd', '/relative', '*'])('should deny request target %s', async (target) => {
    const res = await get(target.replace(':0', `:${P}`), t.credential('a'));
    expect([400, 403]).toContain(res.status);
    if (res.status === 403) expect(JSON.parse(res.body).error.code).toBe('egress_denied');
  });

  it('should refuse protocol upgrades', async () => {
    const res = await get(`http://api.test:${P}/`, t.credential('a'), ['Upgrade: websocket', 'Connection: upgrade']);
    expect(res.status).toBe(403);
  });
});

describe('egress proxy: headers and relaying (§D 32, 34)', () => {
  it('should strip the credential, Proxy-*, hop-by-hop and X-Forwarded-* and set Host from the target', async () => {
    const cred = t.credential('a');
    const res = await get(`http://api.test:${P}/h`, cred, ['X-Forwarded-For: 10.0.0.1', 'X-Forwarded-Host: evil.test', 'Forwarded: for=1.2.3.4',
      'Proxy-Connection: keep-alive', 'Keep-Alive: 5', 'X-Drop-Me: 1', 'Connection: X-Drop-Me', 'X-Keep: yes', 'Host: evil.test']);
    expect(res.status).toBe(200);
    const seen = up.requests.at(-1)!;
    expect(seen.url).toBe('/h');
    expect(seen.headers.host).toBe(`api.test:${P}`);
    expect(seen.headers['x-keep']).toBe('yes');
    for (const h of ['proxy-authorization', 'x-forwarded-for', 'x-forwarded-host', 'forwarded', 'proxy-connection', 'keep-alive', 'x-drop-me']) expect(seen.headers[h], h).toBeUndefined();
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(cred);
    // The upstream's fake proxy headers do not come back: only the proxy's own answers carry them.
    expect(res.headers['x-isohost-egress-error']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
  });

  it('should relay a redirect without following it', async () => {
    const res = await get(`http://api.test:${P}/redirect`, t.credential('a'));
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('http://10.0.0.1/');
  });

  it('should tunnel CONNECT to an allowed host:port and relay bytes both ways', async () => {
    const res = await connectTo(`api.test:${P}`, t.credential('a'));
    expect(res.status).toBe(200);
    const answer = await new Promise<string>((resolve) => {
      let text = res.rest.toString();
      res.socket.on('data', (c: Buffer) => { text += c.toString(); });
      res.socket.on('end', () => resolve(text));
      res.socket.write(`GET /tunnel HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('ok from up');
    expect(up.requests.at(-1)!.url).toBe('/tunnel');
  });
});

describe('egress proxy: authentication', () => {
  const otherKey = randomBytes(32);
  const cases: [string, () => string | null][] = [
    ['no credential', () => null],
    ['garbage', () => 'not-a-credential'],
    ['forged with another key', () => mintEgressCredential(otherKey, { tenant: 'a', app: 'x', instance: 'i', exp: Date.now() + 60_000 })],
    ['expired', () => t.credential('a', { exp: Date.now() - 1 })],
  ];

  it.each(cases)('should answer 407 to %s on absolute-form, forwarding and resolving nothing', async (_, cred) => {
    const before = { requests: up.requests.length, connections: up.connections, lookups: t.lookups.length };
    const res = await get(`http://api.test:${P}/`, cred());
    expect(res.status).toBe(407);
    expect(res.headers['proxy-authenticate']).toMatch(/^Bearer /);
    expect({ requests: up.requests.length, connections: up.connections, lookups: t.lookups.length }).toEqual(before);
  });

  it.each(cases)('should answer 407 to %s on CONNECT, tunnelling and resolving nothing', async (_, cred) => {
    const before = { connections: up.connections, lookups: t.lookups.length };
    const res = await connectTo(`api.test:${P}`, cred());
    expect(res.status).toBe(407);
    expect({ connections: up.connections, lookups: t.lookups.length }).toEqual(before);
  });
});

describe('egress proxy: audit and metrics', () => {
  it('should log one line per decision with tenant, host, ip, rule or reason — never the credential', async () => {
    const cred = t.credential('a', { app: 'shop', instance: 'i-42' });
    await get(`http://api.test:${P}/audit`, cred);
    await get(`http://nope.test:${P}/`, cred);
    const lines = t.logs.filter((l) => l.evt === 'egress' && l.instance === 'i-42');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ tenant: 'a', app: 'shop', method: 'GET', host: 'api.test', port: P, ip: '127.0.0.1', decision: 'allow', rule: `api.test:${P}` });
    expect(lines[0].bytesDown).toBeGreaterThan(0);
    expect(lines[1]).toMatchObject({ decision: 'deny', host: 'nope.test' });
    expect(JSON.stringify(t.logs)).not.toContain(cred.split('.')[2]);
  });

  it('should count decisions per tenant on the injected registry', async () => {
    const text = await t.registry.metrics();
    expect(text).toMatch(/isohost_egress_decisions_total\{tenant="a",decision="allow"\} \d+/);
    expect(text).toMatch(/isohost_egress_decisions_total\{tenant="strict",decision="deny"\} \d+/);
    expect(text).toMatch(/isohost_egress_decisions_total\{tenant="\(none\)",decision="unauthenticated"\} \d+/);
    expect(text).toMatch(/isohost_egress_bytes_total\{tenant="a",direction="down"\} \d+/);
  });
});
