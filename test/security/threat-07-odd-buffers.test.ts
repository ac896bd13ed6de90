/**
 * THREATS A7: odd buffers and huge strings at the boundary, through fetch bodies (the one
 * path where guest bytes cross as bytes) and method results.
 *
 * - A resizable ArrayBuffer shrunk or grown, or a buffer detached, after a Request or
 *   Response was built: the body was copied when it was extracted, so the upstream
 *   receives exactly the bytes the body held then. A growable SharedArrayBuffer is not a
 *   BufferSource for Fetch (no [AllowShared]) and is sent stringified, as browsers do.
 * - A detached buffer as a body is a TypeError in the guest; nothing is sent.
 * - Such buffers returned from a method are refused, naming the path (issue 11: JSON would
 *   turn them into `{}`): a coded miniapp_error, no crash.
 * - A 100 MB / 500 MB string returned, or a 24 MB JSON result: `payload_too_large`,
 *   nothing copied to the host, and the host and the next call are fine.
 *
 * Regression: a huge string result used to be serialised in full before the size check
 * (seconds of the tenant's CPU, or a memory breach whose code was lost — see
 * threat-13-memory-breach-code.test.ts); it is now refused by its length first.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBinding } from '../../src/bindings/fetch/index.ts';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { startTestProxy, startUpstream, type TestProxy, type Upstream } from '../helpers/egress-fixtures.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';
import { whileMeasuringHost } from '../helpers/security-fixtures.ts';

declare const fc: any;

const app = bundleOf({
  async send({ url, which }: { url: string; which: string }) {
    const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
    let body: unknown;
    let after: () => void = () => {};
    if (which === 'resizable-shrunk') {
      const buf = new (ArrayBuffer as any)(8, { maxByteLength: 64 });
      new Uint8Array(buf).set(ascii('abcdefgh'));
      body = new Uint8Array(buf);
      after = () => buf.resize(2);
    } else if (which === 'resizable-grown') {
      const buf = new (ArrayBuffer as any)(4, { maxByteLength: 64 });
      new Uint8Array(buf).set(ascii('abcd'));
      body = buf;
      after = () => {
        buf.resize(64);
        new Uint8Array(buf).fill(0x7a);
      };
    } else if (which === 'shared') {
      const sab = new (SharedArrayBuffer as any)(4, { maxByteLength: 16 });
      new Uint8Array(sab).set(ascii('wxyz'));
      body = sab;
      after = () => {
        sab.grow(16);
        new Uint8Array(sab).fill(0x21);
      };
    } else if (which === 'detached-after') {
      const buf = new ArrayBuffer(4);
      new Uint8Array(buf).set(ascii('1234'));
      body = new DataView(buf);
      after = () => void (buf as any).transfer();
    } else if (which === 'detached-before') {
      const buf = new ArrayBuffer(4);
      (buf as any).transfer();
      body = buf;
    } else if (which === 'view-on-detached') {
      const buf = new ArrayBuffer(4);
      body = new Uint8Array(buf);
      (buf as any).transfer();
    }
    try {
      const req = new Request(url, { method: 'POST', body: body as any });
      after();
      const res = await fetch(req);
      return { status: res.status, echoed: await res.text() };
    } catch (e: any) {
      return { name: e.name, code: e.code ?? null };
    }
  },
  responseOfShrunk() {
    const buf = new (ArrayBuffer as any)(5, { maxByteLength: 8 });
    new Uint8Array(buf).set([104, 101, 108, 108, 111]);
    const res = new Response(new Uint8Array(buf));
    buf.resize(0);
    return res.text();
  },
  returnOdd() {
    const shrunk = new (ArrayBuffer as any)(8, { maxByteLength: 8 });
    const view = new Uint8Array(shrunk, 0, 8);
    shrunk.resize(0);
    const detached = new ArrayBuffer(8);
    (detached as any).transfer();
    return { shared: new SharedArrayBuffer(8), shrunkView: view, detached, resizable: shrunk };
  },
  hugeString(mb: number) {
    return 'x'.repeat(mb * 1024 * 1024);
  },
  hugeJson() {
    const s = 'y'.repeat(12 * 1024 * 1024);
    return [s, s];
  },
  ok() {
    return 'ok';
  },
});

let up: Upstream;
let proxy: TestProxy;
let p: Awaited<ReturnType<typeof startTestPlatform>>;

beforeAll(async () => {
  up = await startUpstream('echo', (_req, res, body) => res.end(body.toString('latin1')));
  const rules = [`127.0.0.1:${up.port}`];
  proxy = await startTestProxy({ buffers: { rules } });
  p = await startTestPlatform([{ id: 'buffers', allow: rules, limits: { cpu_ms: 2000, wall_ms: 5000, memory_mb: 128 } }], {
    fetchBinding: (tenant) => fetchBinding({ proxyUrl: proxy.proxy.url, credentialKey: proxy.key, tenantId: tenant.id, limits: tenant.limits, logger: pino({ level: 'silent' }) }),
  });
});
afterAll(async () => {
  await p?.dispose();
  await Promise.all([up?.close(), proxy?.close()]);
});

const send = (which: string) => callOnce(p, 'buffers', 'a7', app, 'send', { url: `http://127.0.0.1:${up.port}/echo`, which });

describe('odd buffers as fetch bodies', () => {
  it.each([
    ['resizable-shrunk', 'abcdefgh'],
    ['resizable-grown', 'abcd'],
    ['detached-after', '1234'],
  ])('should send the bytes a %s body held when the request was built', async (which, bytes) => {
    expect(await send(which)).toEqual({ status: 200, echoed: bytes });
  });

  it('should never send what a growable SharedArrayBuffer body holds after it was grown', async () => {
    // Fetch's BodyInit takes no SharedArrayBuffer (no [AllowShared]); like browsers, the
    // prelude stringifies it. Either way the body is fixed when the request is built.
    const r = await send('shared');
    expect(r.status).toBe(200);
    expect(['wxyz', '[object SharedArrayBuffer]']).toContain(r.echoed);
  });

  it.each(['detached-before', 'view-on-detached'])('should refuse a %s body with a TypeError and send nothing', async (which) => {
    const before = up.requests.length;
    expect(await send(which)).toMatchObject({ name: 'TypeError' });
    expect(up.requests.length).toBe(before);
  });

  it('should keep a Response body built from a buffer that is shrunk afterwards', async () => {
    expect(await callOnce(p, 'buffers', 'a7', app, 'responseOfShrunk')).toBe('hello');
  });
});

describe('odd buffers and huge strings as results', () => {
  it('should refuse shared, shrunk and detached buffers in a result with miniapp_error naming the path', async () => {
    const err = await callOnce(p, 'buffers', 'a7', app, 'returnOdd').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect(err).toMatchObject({ code: 'miniapp_error', message: expect.stringMatching(/result\.shared: SharedArrayBuffer objects cannot be returned/) });
    expect(await callOnce(p, 'buffers', 'a7', app, 'ok')).toBe('ok');
  });

  it.each([100, 500])('should refuse a %i MB string result with payload_too_large, before copying it', async (mb) => {
    const heapBefore = process.memoryUsage().heapUsed;
    const m = await whileMeasuringHost(() => callOnce(p, 'buffers', 'a7', app, 'hugeString', mb));
    expect(m.error).toBeInstanceOf(IsohostError);
    expect((m.error as IsohostError).code).toBe('payload_too_large');
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * 1024 * 1024);
    expect(await callOnce(p, 'buffers', 'a7', app, 'ok')).toBe('ok');
  });

  it('should refuse a 24 MB JSON result with payload_too_large', async () => {
    await expect(callOnce(p, 'buffers', 'a7', app, 'hugeJson')).rejects.toMatchObject({ code: 'payload_too_large' });
    expect(await callOnce(p, 'buffers', 'a7', app, 'ok')).toBe('ok');
  });
});
