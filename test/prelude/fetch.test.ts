import { afterEach, describe, expect, it } from 'vitest';
import { fetch as guestFetch } from '../../runtime-api/prelude/web/fetch.ts';
import { Request as Req } from '../../runtime-api/prelude/web/request.ts';
import { Response as Res } from '../../runtime-api/prelude/web/response.ts';
import { attachHost, posted, type Reply } from './host-port.ts';

const ok = (json: Record<string, unknown>, body?: string): Reply => ({
  ok: true,
  json: { status: 200, statusText: 'OK', headers: [], url: 'https://api.test/x', redirected: false, ...json },
  bytes: body === undefined ? undefined : (new TextEncoder().encode(body).buffer as ArrayBuffer),
});

attachHost();
afterEach(() => { posted.length = 0; });

describe('fetch', () => {
  it('should send url, method, header pairs, redirect and body bytes to the host', async () => {
    attachHost(() => ok({}, ''));
    await guestFetch('https://api.test/items?x=1#f', {
      method: 'put', body: 'hé', headers: [['X-A', '1'], ['x-a', '2']], redirect: 'manual',
    });
    expect(posted).toHaveLength(1);
    expect(posted[0]!.op).toBe('fetch');
    expect(posted[0]!.payload).toEqual({
      url: 'https://api.test/items?x=1#f', method: 'PUT', redirect: 'manual',
      headers: [['x-a', '1'], ['x-a', '2'], ['content-type', 'text/plain;charset=UTF-8']],
    });
    expect(new TextDecoder().decode(posted[0]!.bytes)).toBe('hé');
    await guestFetch('https://api.test/');
    expect(posted[1]!.bytes).toBeUndefined();
  });

  it('should resolve with a basic Response with immutable headers', async () => {
    attachHost(() => ok({
      status: 201, statusText: 'Created', headers: [['Content-Type', 'application/json'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']],
      url: 'https://api.test/final#frag', redirected: true,
    }, '{"id":7}'));
    const res = await guestFetch('https://api.test/start');
    expect(res).toBeInstanceOf(Res);
    expect([res.status, res.statusText, res.ok, res.type, res.url, res.redirected]).toEqual([201, 'Created', true, 'basic', 'https://api.test/final', true]);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(() => res.headers.set('x', 'y')).toThrow(TypeError);
    expect(await res.json()).toEqual({ id: 7 });
    const again = res.clone;
    expect(typeof again).toBe('function');
  });

  it('should give null-body statuses and HEAD an empty body', async () => {
    attachHost(() => ok({ status: 204 }, 'ignored'));
    expect(await (await guestFetch('https://api.test/')).text()).toBe('');
    attachHost(() => ok({}, 'ignored'));
    expect(await (await guestFetch('https://api.test/', { method: 'HEAD' })).text()).toBe('');
  });

  it('should keep the host error code, as a TypeError for network failures', async () => {
    const fail = (code: string) => {
      attachHost(() => ({ ok: false, code, message: `${code} happened` }));
      return guestFetch('https://api.test/').then(() => { throw new Error('resolved'); }, (e: any) => e);
    };
    for (const code of ['egress_denied', 'egress_failed', 'invalid_request', 'payload_too_large']) {
      const e = await fail(code);
      expect(e).toBeInstanceOf(TypeError);
      expect([e.code, e.message]).toEqual([code, `${code} happened`]);
    }
    for (const code of ['timeout', 'resource_exhausted']) {
      const e = await fail(code);
      expect(e).not.toBeInstanceOf(TypeError);
      expect(e).toBeInstanceOf(Error);
      expect(e.code).toBe(code);
    }
  });

  it('should reject, not throw, on bad input and never post it', async () => {
    const p = guestFetch('not a url');
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toThrow(TypeError);
    await expect(guestFetch('https://api.test/', { method: 'GET', body: 'x' })).rejects.toThrow(TypeError);
    await expect((guestFetch as any)()).rejects.toThrow(TypeError);
    expect(posted).toHaveLength(0);
  });

  it('should reject a malformed host reply as egress_failed', async () => {
    attachHost(() => ({ ok: true, json: { status: 'x' } }));
    await expect(guestFetch('https://api.test/')).rejects.toMatchObject({ name: 'TypeError', code: 'egress_failed' });
    attachHost(() => ({ ok: true, json: { status: 200, statusText: '', url: '', redirected: false, headers: [['a']] } }));
    await expect(guestFetch('https://api.test/')).rejects.toMatchObject({ code: 'egress_failed' });
  });

  it('should consume the body of a Request passed in', async () => {
    attachHost(() => ok({}, ''));
    const req = new Req('https://api.test/', { method: 'POST', body: new Uint8Array([1, 2]) });
    await guestFetch(req);
    expect(req.bodyUsed).toBe(true);
    expect(new Uint8Array(posted[0]!.bytes!)).toEqual(new Uint8Array([1, 2]));
    await expect(guestFetch(req)).rejects.toThrow(TypeError);
  });
});
