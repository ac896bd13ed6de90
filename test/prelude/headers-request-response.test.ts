import { describe, expect, it } from 'vitest';
import { Headers as H } from '../../runtime-api/prelude/web/headers.ts';
import { Request as Req } from '../../runtime-api/prelude/web/request.ts';
import { Response as Res } from '../../runtime-api/prelude/web/response.ts';
import { URLSearchParams as USP } from '../../runtime-api/prelude/web/url-search-params.ts';
import { attachHost } from './host-port.ts';

attachHost();

describe('Headers', () => {
  it('should be case-insensitive, combine values and keep Set-Cookie apart', () => {
    const h = new H([['Accept', 'a'], ['ACCEPT', 'b']]);
    h.append('Set-Cookie', 'x=1, y');
    h.append('set-cookie', 'z=2');
    expect(h.get('accept')).toBe('a, b');
    expect(h.get('set-cookie')).toBe('x=1, y, z=2');
    expect(h.getSetCookie()).toEqual(['x=1, y', 'z=2']);
    expect(h.has('SET-COOKIE')).toBe(true);
    expect(h.get('missing')).toBeNull();
  });

  it('should iterate sorted and combined, like undici', () => {
    const init: [string, string][] = [['b', '1'], ['Set-Cookie', 'c1'], ['a', '2'], ['B', '3'], ['set-cookie', 'c2'], ['x-z', '4']];
    const mine = new H(init);
    const node = new Headers(init);
    expect([...mine]).toEqual([...node]);
    expect([...mine.keys()]).toEqual([...node.keys()]);
    expect([...mine.values()]).toEqual([...node.values()]);
    const seen: string[] = [];
    mine.forEach((v, k) => seen.push(`${k}:${v}`));
    expect(seen).toEqual([...node].map(([k, v]) => `${k}:${v}`));
  });

  it('should normalise values and reject invalid names and values', () => {
    const h = new H();
    h.set('x', ' \t v \r\n');
    expect(h.get('x')).toBe('v');
    expect(() => h.append('bad name', 'v')).toThrow(TypeError);
    expect(() => h.append('', 'v')).toThrow(TypeError);
    expect(() => h.append('x', 'a\nb')).toThrow(TypeError);
    expect(() => h.append('x', 'a\0b')).toThrow(TypeError);
    expect(() => h.append('x', '€')).toThrow(TypeError);
    expect(() => new H({ 'é': 'x' })).toThrow(TypeError);
  });

  it('should set, delete and copy', () => {
    const h = new H({ a: '1' });
    h.append('a', '2');
    h.set('A', '3');
    expect([...h]).toEqual([['a', '3']]);
    const copy = new H(h);
    h.delete('a');
    expect(h.has('a')).toBe(false);
    expect(copy.get('a')).toBe('3');
    expect(Object.prototype.toString.call(h)).toBe('[object Headers]');
    expect(Object.prototype.toString.call(h.entries())).toBe('[object Headers Iterator]');
  });
});

describe('Request', () => {
  it('should resolve the URL, normalise the method and default the rest', () => {
    const r = new Req('https://Example.com/a/../b?q#frag', { method: 'post', body: 'x' });
    expect(r.url).toBe('https://example.com/b?q#frag');
    expect(r.method).toBe('POST');
    expect(new Req('https://x.test', { method: 'patch' }).method).toBe('patch');
    expect(new Req('https://x.test').method).toBe('GET');
    expect([r.redirect, r.mode, r.credentials, r.cache, r.referrer]).toEqual(['follow', 'cors', 'same-origin', 'default', 'about:client']);
    expect(r.body).toBeNull();
  });

  it('should reject bad URLs, methods, redirect modes and GET bodies', () => {
    expect(() => new Req('/relative')).toThrow(TypeError);
    expect(() => new Req('https://u:p@x.test')).toThrow(/credentials/);
    expect(() => new Req('https://x.test', { method: 'CONNECT' })).toThrow(TypeError);
    expect(() => new Req('https://x.test', { method: 'b a d' })).toThrow(TypeError);
    expect(() => new Req('https://x.test', { redirect: 'sometimes' as any })).toThrow(TypeError);
    expect(() => new Req('https://x.test', { body: 'x' })).toThrow(/GET\/HEAD/);
    expect(() => new Req('https://x.test', { method: 'HEAD', body: 'x' })).toThrow(TypeError);
  });

  it('should extract bodies with their content types', async () => {
    const post = (body: unknown) => new Req('https://x.test', { method: 'POST', body: body as any });
    expect(post('hé').headers.get('content-type')).toBe('text/plain;charset=UTF-8');
    expect(await post('hé').text()).toBe('hé');
    const p = new USP({ a: 'b c' });
    expect(post(p).headers.get('content-type')).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    expect(await post(p).text()).toBe('a=b+c');
    const bytes = new Uint8Array([1, 2, 3]);
    const r = post(bytes.subarray(1));
    bytes[2] = 9; // the body was copied
    expect(r.headers.has('content-type')).toBe(false);
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(new Uint8Array([2, 3]));
    expect(await post(new ArrayBuffer(2)).bytes()).toEqual(new Uint8Array(2));
    expect(await post('{"a":1}').json()).toEqual({ a: 1 });
    expect(await post({ toString: () => 'obj' }).text()).toBe('obj');
    const typed = new Req('https://x.test', { method: 'PUT', body: 'x', headers: { 'content-type': 'text/custom' } });
    expect(typed.headers.get('content-type')).toBe('text/custom');
  });

  it('should read a body once and clone before reading', async () => {
    const r = new Req('https://x.test', { method: 'POST', body: 'once' });
    const c = r.clone();
    expect(r.bodyUsed).toBe(false);
    expect(await r.text()).toBe('once');
    expect(r.bodyUsed).toBe(true);
    await expect(r.text()).rejects.toThrow(TypeError);
    expect(() => r.clone()).toThrow(TypeError);
    expect(await c.text()).toBe('once');
    expect(await new Req('https://x.test').text()).toBe('');
    await expect(r.blob()).rejects.toThrow(/not supported/);
  });

  it('should take over the body of an input request', async () => {
    const a = new Req('https://x.test/a', { method: 'POST', body: 'moved', headers: { x: '1' } });
    const b = new Req(a, { headers: { y: '2' } });
    expect(b.url).toBe('https://x.test/a');
    expect(b.method).toBe('POST');
    expect([...b.headers]).toEqual([['y', '2']]);
    expect(a.bodyUsed).toBe(true);
    expect(await b.text()).toBe('moved');
    expect(() => new Req(a)).toThrow(TypeError);
  });

  it('should reject brand-less calls as rejections for body methods', async () => {
    await expect(Req.prototype.text.call({})).rejects.toThrow(TypeError);
    expect(() => Reflect.get(Req.prototype, 'url', {})).toThrow(TypeError);
  });
});

describe('Response', () => {
  it('should default and validate status and statusText', () => {
    const r = new Res();
    expect([r.status, r.statusText, r.ok, r.type, r.url, r.redirected]).toEqual([200, '', true, 'default', '', false]);
    expect(new Res(null, { status: 404 }).ok).toBe(false);
    expect(() => new Res(null, { status: 199 })).toThrow(RangeError);
    expect(() => new Res(null, { status: 600 })).toThrow(RangeError);
    expect(new Res(null, { status: 65736 }).status).toBe(200); // unsigned short wraps, as Web IDL says
    expect(() => new Res(null, { statusText: 'a\nb' })).toThrow(TypeError);
    expect(() => new Res('body', { status: 204 })).toThrow(TypeError);
    expect(new Res(null, { status: 204 }).status).toBe(204);
  });

  it('should build json, error and redirect responses', async () => {
    const j = Res.json({ a: [1] }, { status: 201, headers: { x: 'y' } });
    expect([j.status, j.headers.get('content-type'), j.headers.get('x')]).toEqual([201, 'application/json', 'y']);
    expect(await j.json()).toEqual({ a: [1] });
    expect(() => Res.json(undefined)).toThrow(TypeError);
    expect(Res.json('s', { headers: { 'content-type': 'text/x' } }).headers.get('content-type')).toBe('text/x');
    const e = Res.error();
    expect([e.type, e.status, e.ok]).toEqual(['error', 0, false]);
    expect(() => e.headers.set('a', 'b')).toThrow(/immutable/);
    const r = Res.redirect('https://x.test/p?q', 301);
    expect([r.status, r.headers.get('location')]).toEqual([301, 'https://x.test/p?q']);
    expect(() => Res.redirect('https://x.test', 200)).toThrow(RangeError);
    expect(() => Res.redirect('/relative')).toThrow(TypeError);
  });

  it('should read and clone bodies like Request', async () => {
    const r = new Res(new Uint8Array([0xe2, 0x82, 0xac]));
    const c = r.clone();
    expect(await r.text()).toBe('€');
    expect(r.bodyUsed).toBe(true);
    expect(await c.bytes()).toEqual(new Uint8Array([0xe2, 0x82, 0xac]));
    await expect(new Res('{').json()).rejects.toThrow(SyntaxError);
    expect(Object.prototype.toString.call(r)).toBe('[object Response]');
  });
});
