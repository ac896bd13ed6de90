/**
 * `fc.fetch`'s host half against the real proxy and real loopback upstreams.
 * THREATS.md §D 29–35 through the path a mini-app actually uses.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBinding } from '../../src/bindings/fetch/index.ts';
import type { Binding } from '../../src/bindings/types.ts';
import { IsohostError } from '../../src/errors.ts';
import { ADDRESS_FORMS, type TestProxy, type Upstream, startTestProxy, startUpstream, testScope, watchConnections } from '../helpers/egress-fixtures.ts';

let up: Upstream;
let victim: Upstream;
let t: TestProxy;
let P: number;
let V: number;
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;

beforeAll(async () => {
  victim = await startUpstream('victim');
  V = victim.port;
  up = await startUpstream('up', (req, res, body) => {
    const path = req.url ?? '/';
    const redirect = (status: number, location: string) => { res.writeHead(status, { location }); res.end('moved'); };
    if (path === '/echo') { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ method: req.method, headers: req.headers, body: body.toString() })); return; }
    if (path === '/cookies') { res.setHeader('set-cookie', ['a=1', 'b=2']); res.end('c'); return; }
    if (path === '/to-victim-name') return redirect(302, `http://victim.test:${V}/`);
    if (path === '/to-victim-ip') return redirect(302, `http://127.0.0.1:${V}/`);
    if (path === '/to-metadata') return redirect(302, 'http://169.254.169.254/latest/meta-data/');
    if (path === '/to-file') return redirect(302, 'file:///etc/passwd');
    if (path === '/to-echo') return redirect(302, '/echo');
    if (path === '/303') return redirect(303, '/echo');
    if (path === '/307') return redirect(307, '/echo');
    if (path === '/loop') return redirect(302, '/loop');
    if (path === '/big') { res.setHeader('content-length', String(2 * MiB)); res.end(Buffer.alloc(2 * MiB)); return; }
    if (path === '/big-chunked') { for (let i = 0; i < 4; i++) res.write(Buffer.alloc(512 * 1024)); res.end(); return; }
    if (path === '/slow') { setTimeout(() => res.end('late'), 3000).unref(); return; }
    res.end(`ok ${path}`);
  });
  P = up.port;
  t = await startTestProxy({
    a: { rules: [`api.test:${P}`, `127.0.0.1:${P}`, `allowed.example:${P}`, `tls.test:${P}`] },
    b: { rules: [`other.test:${P}`, `127.0.0.1:${P}`] },
    strict: { rules: [`api.test:${P}`] },
  });
});
afterAll(async () => { await Promise.all([up.close(), victim.close(), t.close()]); });

const binding = (tenantId: string, opts: { key?: Buffer; per?: number; mb?: number; proxyUrl?: string } = {}): Binding =>
  fetchBinding({ proxyUrl: opts.proxyUrl ?? t.proxy.url, credentialKey: opts.key ?? t.key, tenantId, limits: { fetch_per_call: opts.per ?? 50, fetch_response_mb: opts.mb ?? 1 }, logger });

interface Res { status: number; statusText: string; headers: [string, string][]; url: string; redirected: boolean; text: string }
/** One fetch, its body read to the end the way the guest does (`fetch.read` while the reply names a body). */
async function call(b: Binding, payload: Record<string, unknown>, scope = testScope(), bytes?: ArrayBuffer): Promise<Res> {
  const reply = await b.handle('fetch', payload, bytes, scope);
  const head = JSON.parse(reply.json);
  const chunks = [Buffer.from(reply.bytes ?? new ArrayBuffer(0))];
  if (head.body !== undefined) {
    for (;;) {
      const next = await b.handle('fetch.read', { body: head.body }, undefined, scope);
      chunks.push(Buffer.from(next.bytes ?? new ArrayBuffer(0)));
      if (JSON.parse(next.json).done) break;
    }
  }
  delete head.body;
  return { ...head, text: Buffer.concat(chunks).toString() };
}
async function failure(p: Promise<unknown>): Promise<IsohostError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(IsohostError);
  return err as IsohostError;
}

describe('fc.fetch: §D 29 address forms through the binding', () => {
  it.each(ADDRESS_FORMS)('should refuse %s for a tenant without IP rules, before connecting', async (form) => {
    const before = up.requests.length;
    const watch = watchConnections();
    const err = await failure(call(binding('strict'), { url: form.replace('PORT', String(P)) }));
    watch.stop();
    // A zone id is not valid URL syntax: rejected before anything is sent, like fetch's TypeError.
    expect(err.code).toBe(form.includes('%25') ? 'invalid_request' : 'egress_denied');
    expect(watch.attempts.filter((a) => !a.endsWith(`:${t.proxy.port}`))).toEqual([]);
    expect(up.requests.length).toBe(before);
  });

  it('should reach the loopback upstream through the IP rule, and report the reply shape', async () => {
    const res = await call(binding('a'), { url: `http://127.0.0.1:${P}/cookies`, headers: [['accept', 'text/plain']] });
    expect(res).toMatchObject({ status: 200, statusText: 'OK', url: `http://127.0.0.1:${P}/cookies`, redirected: false, text: 'c' });
    expect(res.headers.filter(([k]) => k === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
  });

  it('should deny a name resolving to loopback without an IP rule, naming host and reason', async () => {
    const err = await failure(call(binding('strict'), { url: `http://api.test:${P}/` }));
    expect(err.code).toBe('egress_denied');
    expect(err.message).toMatch(/api\.test.*loopback/);
  });

  it('should carry the proxy reason for a refused CONNECT (https target)', async () => {
    const err = await failure(call(binding('a'), { url: `https://nope.test:${P}/` }));
    expect(err.code).toBe('egress_denied');
    expect(err.message).toContain(`no network.allow rule matches nope.test:${P}`);
    expect(t.lookups).not.toContain('nope.test');
  });

  it('should send https targets through a CONNECT tunnel', async () => {
    const before = up.connections;
    // The loopback upstream speaks plain HTTP, so TLS fails — after the tunnel was opened.
    const err = await failure(call(binding('a'), { url: `https://tls.test:${P}/` }));
    expect(err.code).toBe('egress_failed');
    expect(up.connections).toBe(before + 1);
  });
});

describe('fc.fetch: §D 30 parser confusion', () => {
  it.each([
    [`http://allowed.example@127.0.0.1:${0}/`, 'invalid_request'],
    [`http://127.0.0.1:${0}#@allowed.example/`, 'egress_denied'],
    [`http://allowed.example.evil.test:${0}/`, 'egress_denied'],
  ])('should not reach the victim for %s', async (url, code) => {
    const err = await failure(call(binding('b'), { url: url.replace(':0', `:${V}`) }));
    expect(err.code).toBe(code);
    expect(victim.requests.length).toBe(0);
  });

  it.each([`http://allowed.example:PORT\\@evil.test/`, 'http://allowed.example.:PORT/', 'http://ALLOWED.example:PORT/', 'http://allowed\u3002example:PORT/'])(
    'should check and connect to the same normalised host for %s', async (url) => {
      const res = await call(binding('a'), { url: url.replace('PORT', String(P)) });
      expect(res.status).toBe(200);
      expect(up.requests.at(-1)!.headers.host).toMatch(/^allowed\.example\.?:\d+$/);
      expect(t.lookups).not.toContain('evil.test');
    });
});

describe('fc.fetch: tenants, headers, credentials (§D 34)', () => {
  it('should allow a URL for tenant a and deny the same URL for tenant b', async () => {
    expect((await call(binding('a'), { url: `http://api.test:${P}/x` })).text).toBe('ok /x');
    expect((await failure(call(binding('b'), { url: `http://api.test:${P}/x` }))).code).toBe('egress_denied');
  });

  it('should drop guest-set Host, Proxy-*, hop-by-hop and X-Forwarded-* headers; the tenant stays the binding\'s', async () => {
    const aCredential = t.credential('a');
    const err = await failure(call(binding('b'), { url: `http://api.test:${P}/echo`, headers: [['Proxy-Authorization', `Bearer ${aCredential}`]] }));
    expect(err.code).toBe('egress_denied');
    const res = await call(binding('a'), {
      url: `http://api.test:${P}/echo`, method: 'post',
      headers: [['Host', 'evil.test'], ['X-Forwarded-For', '10.0.0.1'], ['Proxy-Authorization', 'Bearer x'], ['Connection', 'x-keep'], ['Upgrade', 'h2c'], ['x-keep', '1'], ['Content-Length', '999']],
    }, testScope(), new TextEncoder().encode('hi').buffer);
    const echo = JSON.parse(res.text);
    expect(echo.method).toBe('POST');
    expect(echo.body).toBe('hi');
    expect(echo.headers.host).toBe(`api.test:${P}`);
    expect(echo.headers['x-keep']).toBe('1');
    for (const h of ['x-forwarded-for', 'proxy-authorization', 'upgrade']) expect(echo.headers[h], h).toBeUndefined();
    expect(JSON.stringify(up.requests.map((r) => r.rawHeaders))).not.toMatch(/proxy-authorization/i);
  });

  it('should fail with egress_failed, not leak the credential, when the proxy refuses it', async () => {
    const err = await failure(call(binding('a', { key: randomBytes(32) }), { url: `http://api.test:${P}/` }));
    expect(err.code).toBe('egress_failed');
    expect(err.message).not.toMatch(/v1\./);
  });

  it('should fail with egress_failed when the proxy is down (THREATS §E 40)', async () => {
    const gone = await startUpstream('gone');
    await gone.close();
    const err = await failure(call(binding('a', { proxyUrl: `http://127.0.0.1:${gone.port}` }), { url: `http://api.test:${P}/` }));
    expect(err.code).toBe('egress_failed');
    expect(err.message).toContain('ECONNREFUSED');
  });
});

describe('fc.fetch: redirects (§D 32)', () => {
  it.each([['/to-victim-name', 'victim.test'], ['/to-victim-ip', '127.0.0.1']])('should deny the hop %s and the denied host receives nothing', async (path, host) => {
    const err = await failure(call(binding('b'), { url: `http://127.0.0.1:${P}${path}` }));
    expect(err.code).toBe('egress_denied');
    expect(err.message).toContain(host);
    expect(victim.requests.length).toBe(0);
    expect(victim.connections).toBe(0);
  });

  it.each([['/to-metadata', 'egress_denied'], ['/to-file', 'egress_denied'], ['/loop', 'egress_failed']])('should refuse the redirect %s with %s', async (path, code) => {
    expect((await failure(call(binding('a'), { url: `http://api.test:${P}${path}` }))).code).toBe(code);
  });

  it('should follow an allowed redirect, re-checked through the proxy', async () => {
    const res = await call(binding('a'), { url: `http://api.test:${P}/to-echo` });
    expect(res).toMatchObject({ status: 200, redirected: true, url: `http://api.test:${P}/echo` });
  });

  it('should turn a 303 into a body-less GET and keep method and body on 307', async () => {
    const body = new TextEncoder().encode('payload').buffer;
    const r303 = JSON.parse((await call(binding('a'), { url: `http://api.test:${P}/303`, method: 'POST', headers: [['content-type', 'text/plain']] }, testScope(), body)).text);
    expect(r303).toMatchObject({ method: 'GET', body: '' });
    expect(r303.headers['content-type']).toBeUndefined();
    const r307 = JSON.parse((await call(binding('a'), { url: `http://api.test:${P}/307`, method: 'POST' }, testScope(), body)).text);
    expect(r307).toMatchObject({ method: 'POST', body: 'payload' });
  });

  it("should return the 3xx with redirect 'manual' and reject with 'error'", async () => {
    const res = await call(binding('a'), { url: `http://api.test:${P}/to-echo`, redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers).toContainEqual(['location', '/echo']);
    expect((await failure(call(binding('a'), { url: `http://api.test:${P}/to-echo`, redirect: 'error' }))).code).toBe('egress_failed');
  });
});

describe('fc.fetch: limits', () => {
  it('should allow fetch_per_call fetches per call, then resource_exhausted; a new call starts again', async () => {
    const b = binding('a', { per: 2 });
    const scope = testScope();
    await call(b, { url: `http://api.test:${P}/1` }, scope);
    await call(b, { url: `http://api.test:${P}/2` }, scope);
    expect((await failure(call(b, { url: `http://api.test:${P}/3` }, scope))).code).toBe('resource_exhausted');
    expect((await call(b, { url: `http://api.test:${P}/4` }, testScope())).status).toBe(200);
  });

  it.each(['/big', '/big-chunked'])('should abort %s past fetch_response_mb with resource_exhausted', async (path) => {
    const err = await failure(call(binding('a', { mb: 1 }), { url: `http://api.test:${P}${path}` }));
    expect(err.code).toBe('resource_exhausted');
    expect(err.message).toContain('fetch_response_mb');
  });

  it('should end a slow upstream at the call deadline with timeout', async () => {
    const started = Date.now();
    const err = await failure(call(binding('a'), { url: `http://api.test:${P}/slow` }, testScope({ deadlineMs: 300 })));
    expect(err.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('should abort with timeout when the call ends mid-fetch', async () => {
    const scope = testScope();
    setTimeout(() => scope.end(), 100);
    expect((await failure(call(binding('a'), { url: `http://api.test:${P}/slow` }, scope))).code).toBe('timeout');
  });
});

describe('fc.fetch: input validation', () => {
  it.each([
    [{ url: 'not a url' }], [{ url: 'ftp://api.test/' }], [{ url: 'file:///etc/passwd' }], [{ url: `http://api.test:${1}/`, method: 'GE T' }],
    [{ url: `http://api.test/`, method: 'CONNECT' }], [{ url: `http://api.test/`, method: 'trace' }], [{ url: 'http://api.test/', headers: [['x', 'a\r\nb: c']] }],
    [{ url: 'http://api.test/', headers: [['bad name', 'v']] }], [{ url: 'http://api.test/', headers: [['x', 'caf\u00e9\u2603']] }], [{ url: 'http://api.test/', redirect: 'sometimes' }], [{}], [null],
  ])('should reject %j with invalid_request', async (payload) => {
    expect((await failure(binding('a').handle('fetch', payload, undefined, testScope()))).code).toBe('invalid_request');
  });

  it('should reject a GET with a body', async () => {
    const err = await failure(binding('a').handle('fetch', { url: `http://api.test:${P}/` }, new ArrayBuffer(2), testScope()));
    expect(err.code).toBe('invalid_request');
  });

  it('should return an empty body for HEAD', async () => {
    const res = await call(binding('a'), { url: `http://api.test:${P}/x`, method: 'head' });
    expect(res).toMatchObject({ status: 200, text: '' });
  });
});
