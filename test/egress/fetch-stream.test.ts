/**
 * Fetch response bodies stream to the guest (issue 10, deliverable 4; THREATS F44): the
 * host hands a body over 64 KiB at a time as the guest reads it, instead of buffering it
 * whole, so host memory stays bounded whatever the body's size; `fetch_response_mb`
 * still caps the total; a body never read is cancelled when its call ends. Real isolate,
 * real proxy, real loopback upstream.
 */
import type { ServerResponse } from 'node:http';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBinding } from '../../src/bindings/fetch/index.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { type TestProxy, type Upstream, startTestProxy, startUpstream } from '../helpers/egress-fixtures.ts';
import { appBundle, callOnce, startTestPlatform } from '../helpers/platform.ts';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

const app = bundleOf({
  /** Reads the body chunk by chunk and keeps nothing but counts. */
  async stream({ url }: { url: string }) {
    const res = await fetch(url);
    const reader = res.body!.getReader();
    let total = 0;
    let chunks = 0;
    let maxChunk = 0;
    let sum = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.byteLength;
      chunks++;
      maxChunk = Math.max(maxChunk, value.byteLength);
      sum = (sum + value[0]! + value[value.byteLength - 1]!) % 65521;
    }
    return { status: res.status, total, chunks, maxChunk, sum, bodyUsed: res.bodyUsed, locked: res.body!.locked };
  },
  async text({ url }: { url: string }) {
    const res = await fetch(url);
    const copy = res.clone();
    const [a, b] = await Promise.all([res.text(), copy.arrayBuffer()]);
    let iterated = 0;
    try {
      for await (const c of (await fetch(url)).body as any) iterated += c.byteLength;
    } catch (e: any) {
      return { error: e.message };
    }
    return { length: a.length, same: a === new TextDecoder().decode(b), head: a.slice(0, 12), tail: a.slice(-12), iterated };
  },
  async readAll({ url }: { url: string }) {
    try {
      const res = await fetch(url);
      return { length: (await res.arrayBuffer()).byteLength };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: e.message };
    }
  },
  async poisoned({ url }: { url: string }) {
    // A mini-app that replaces then (THREATS A2) still reads its bodies (await never calls it).
    Promise.prototype.then = function () {
      throw new Error('poisoned then');
    };
    const reader = (await fetch(url)).body!.getReader();
    let streamed = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      streamed += value.byteLength;
    }
    const res = await fetch(url);
    const copy = res.clone();
    const text = await res.text();
    const bytes = await copy.arrayBuffer();
    return { streamed, text: text.length, bytes: bytes.byteLength };
  },
  async keep({ url }: { url: string }) {
    (globalThis as any).kept = await fetch(url);
    return (globalThis as any).kept.status;
  },
  async later() {
    try {
      return { length: (await (globalThis as any).kept.text()).length };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: e.message };
    }
  },
  async leave({ url, cancel }: { url: string; cancel: boolean }) {
    const res = await fetch(url);
    if (cancel) await res.body!.cancel();
    return res.status;
  },
});

/** Writes `total` bytes in 64 KiB writes, waiting for 'drain' (so the upstream only runs ahead as far as the reader lets it). */
async function writeBody(res: ServerResponse, total: number, fill: (i: number) => number = (i) => i % 251): Promise<void> {
  let sent = 0;
  let i = 0;
  while (sent < total && !res.destroyed) {
    const n = Math.min(CHUNK, total - sent);
    const ok = res.write(Buffer.alloc(n, fill(i++)));
    sent += n;
    if (!ok) await new Promise((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
  }
  res.end();
}

let up: Upstream;
let t: TestProxy;
let platform: Awaited<ReturnType<typeof startTestPlatform>>;
/** When each upstream response closed, and whether it had finished. */
const closes: { path: string; finished: boolean; at: number }[] = [];
/** The fetch binding's debug lines: each ended body reports the most the host held of it at once. */
const bindingLines: { evt?: string; bytes?: number; peakBuffered?: number }[] = [];
const bindingLogger = pino({ level: 'debug' }, { write: (line: string) => void bindingLines.push(JSON.parse(line)) });

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    res.on('close', () => closes.push({ path: req.url ?? '', finished: res.writableFinished, at: Date.now() }));
    const path = req.url ?? '/';
    if (path === '/20mib') return void writeBody(res, 20 * MiB);
    if (path === '/3mib') return void writeBody(res, 3 * MiB, (i) => 97 + (i % 26));
    if (path === '/3mib-declared') { res.setHeader('content-length', String(3 * MiB)); return void writeBody(res, 3 * MiB); }
    if (path === '/endless') {
      // Never ends: only the reader going away stops it.
      const timer = setInterval(() => res.write(Buffer.alloc(CHUNK, 1)), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.end('small');
  });
  const rules = [`api.test:${up.port}`, `127.0.0.1:${up.port}`];
  t = await startTestProxy({ big: { rules, limits: { fetch_response_mb: 30 } }, tight: { rules, limits: { fetch_response_mb: 1 } } });
  const limits = { cpu_ms: 10_000, wall_ms: 30_000, memory_mb: 128 };
  platform = await startTestPlatform(
    [
      { id: 'big', allow: rules, limits: { ...limits, fetch_response_mb: 30 } },
      { id: 'tight', allow: rules, limits: { ...limits, fetch_response_mb: 1 } },
    ],
    { fetchBinding: (tenant) => fetchBinding({ proxyUrl: t.proxy.url, credentialKey: t.key, tenantId: tenant.id, limits: tenant.limits, logger: bindingLogger }) },
  );
});
afterAll(async () => {
  await platform?.dispose();
  await Promise.all([up?.close(), t?.close()]);
});

describe('fetch bodies stream to the guest', () => {
  it('should read a 20 MiB body chunk by chunk while the host holds only a few chunks of it', async () => {
    const url = `http://api.test:${up.port}/20mib`;
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage().rss); }, 5);
    const before = bindingLines.length;
    let result: any;
    try {
      result = await callOnce(platform, 'big', 'reader', app, 'stream', { url });
    } finally {
      clearInterval(sampler);
    }
    expect(result).toMatchObject({ status: 200, total: 20 * MiB, bodyUsed: true, locked: true });
    expect(result.maxChunk).toBeLessThanOrEqual(CHUNK);
    expect(result.chunks).toBeGreaterThanOrEqual((20 * MiB) / CHUNK);
    // The binding's own account: at no point did it hold more than a few 64 KiB chunks of
    // the body (undici's high-water mark pauses the socket past 64 KiB), never the 20 MiB.
    const ended = bindingLines.slice(before).find((l) => l.evt === 'fetch.body');
    expect(ended).toMatchObject({ bytes: 20 * MiB });
    expect(ended!.peakBuffered).toBeGreaterThan(0);
    expect(ended!.peakBuffered).toBeLessThanOrEqual(4 * CHUNK);
    // RSS is shared with the isolate and the in-process proxy, so only reported (README, SECURITY).
    console.log(`20 MiB in ${result.chunks} chunks; host held at most ${ended!.peakBuffered} bytes of it; RSS peak +${((rssPeak - rssBefore) / MiB).toFixed(1)} MiB`);
  });

  it('should give text(), clone() and async iteration the whole body across chunk boundaries', async () => {
    const r = await callOnce(platform, 'big', 'reader', app, 'text', { url: `http://api.test:${up.port}/3mib` });
    expect(r).toEqual({ length: 3 * MiB, same: true, head: 'a'.repeat(12), tail: String.fromCharCode(97 + (47 % 26)).repeat(12), iterated: 3 * MiB });
  });

  it('should read bodies in a mini-app that replaced Promise.prototype.then', async () => {
    expect(await callOnce(platform, 'big', 'reader', app, 'poisoned', { url: `http://api.test:${up.port}/3mib` })).toEqual({ streamed: 3 * MiB, text: 3 * MiB, bytes: 3 * MiB });
  });

  it('should end a body over fetch_response_mb with resource_exhausted, declared or not', async () => {
    const chunked = await callOnce(platform, 'tight', 'reader', app, 'readAll', { url: `http://api.test:${up.port}/3mib` });
    expect(chunked).toMatchObject({ code: 'resource_exhausted' });
    expect(chunked.message).toMatch(/fetch_response_mb/);
    const declared = await callOnce(platform, 'tight', 'reader', app, 'readAll', { url: `http://api.test:${up.port}/3mib-declared` });
    expect(declared).toMatchObject({ code: 'resource_exhausted' });
    // A body within the limit still reads whole.
    expect(await callOnce(platform, 'tight', 'reader', app, 'readAll', { url: `http://api.test:${up.port}/small` })).toEqual({ length: 5 });
  });

  it('should not let a later call read a body its own call left open', async () => {
    const tenant = platform.tenants.get('big');
    const { info } = await platform.host.launch(tenant, appBundle('keeper', app), null);
    try {
      const before = closes.length;
      expect(JSON.parse(await platform.host.call(tenant, null, info.id, 'keep', JSON.stringify({ url: `http://api.test:${up.port}/endless` })))).toBe(200);
      await expect.poll(() => closes.slice(before).some((c) => c.path === '/endless' && !c.finished), { timeout: 5000, interval: 20 }).toBe(true);
      const later = JSON.parse(await platform.host.call(tenant, null, info.id, 'later', 'null'));
      expect(later).toMatchObject({ name: 'TypeError', code: 'invalid_request' });
      expect(later.message).toMatch(/bodies end with the call that fetched them/);
    } finally {
      platform.host.dispose(tenant, null, info.id);
    }
  });

  it.each([false, true])('should close the upstream connection of a body never read (cancel() called: %s)', async (cancel) => {
    const before = closes.length;
    const started = Date.now();
    expect(await callOnce(platform, 'big', 'reader', app, 'leave', { url: `http://api.test:${up.port}/endless`, cancel })).toBe(200);
    // The call has ended: the upstream sees its response closed, unfinished, soon after.
    await expect.poll(() => closes.slice(before).find((c) => c.path === '/endless'), { timeout: 5000, interval: 20 }).toBeDefined();
    const closed = closes.slice(before).find((c) => c.path === '/endless')!;
    expect(closed.finished).toBe(false);
    expect(closed.at - started).toBeLessThan(5000);
  });
});
