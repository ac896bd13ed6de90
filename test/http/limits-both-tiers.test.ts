/**
 * The per-tenant limits of issue 10, deliverable 4, hold in both sandbox tiers: the same
 * bundle, served over HTTP on a real port for a `compute: shared` tenant and for a
 * `compute: process` tenant (its isolates in a supervised sandbox process). Log output is
 * capped per call with its summary line and counter, `WebAssembly` is absent, and a
 * fetched body streams to the guest in ≤ 64 KiB chunks through the real egress proxy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { startUpstream, type Upstream } from '../helpers/egress-fixtures.ts';
import { type ProcessServer, startProcessServer } from '../helpers/process-server.ts';

declare const WebAssembly: unknown;

const MiB = 1024 * 1024;
const APP = bundleOf({
  wide() {
    const s = 'z'.repeat(8000);
    for (let i = 0; i < 100; i++) console.log(s);
    return typeof WebAssembly;
  },
  async stream({ url }: { url: string }) {
    const reader = (await fetch(url)).body!.getReader();
    let total = 0;
    let chunks = 0;
    let maxChunk = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { total, chunks, maxChunk };
      total += value.byteLength;
      chunks++;
      maxChunk = Math.max(maxChunk, value.byteLength);
    }
  },
});

let up: Upstream;
let s: ProcessServer;
beforeAll(async () => {
  up = await startUpstream('up', (_req, res) => {
    for (let i = 0; i < 48; i++) res.write(Buffer.alloc(64 * 1024, i));
    res.end();
  });
  const allow = [`127.0.0.1:${up.port}`];
  const limits = { cpu_ms: 5000, wall_ms: 20_000 };
  s = await startProcessServer([
    { id: 'inproc', compute: 'shared', allow, limits },
    { id: 'boxed', compute: 'process', allow, limits },
  ]);
  for (const t of ['inproc', 'boxed']) await s.deploy(t, 'app', APP);
}, 60_000);
afterAll(async () => {
  await s?.close();
  await up?.close();
});

describe.each(['inproc', 'boxed'])('limits in the %s tenant', (tenant) => {
  it('should cap log output per call, with one summary line and the counter, and offer no WebAssembly', async () => {
    const res = await s.call(tenant, 'app', 'wide');
    expect(res).toEqual({ status: 200, body: { result: 'undefined' } });
    const mine = s.logs.filter((l) => l.tenant === tenant);
    expect(mine.filter((l) => l.source === 'miniapp')).toHaveLength(32);
    const summaries = mine.filter((l) => l.source === 'isohost' && l.dropped !== undefined);
    expect(summaries.map((l) => l.msg)).toEqual(['68 lines dropped: per-call log limit']);
    const metrics = (await s.get('/metrics')).body as string;
    expect(metrics).toMatch(new RegExp(`^isohost_log_lines_dropped_total\\{tenant="${tenant}"\\} 68$`, 'm'));
  });

  it('should stream a fetched body to the guest in chunks of at most 64 KiB', async () => {
    const res = await s.call(tenant, 'app', 'stream', { url: `http://127.0.0.1:${up.port}/` });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.result.total).toBe(3 * MiB);
    expect(res.body.result.maxChunk).toBeLessThanOrEqual(64 * 1024);
    expect(res.body.result.chunks).toBeGreaterThanOrEqual(48);
  });
});
