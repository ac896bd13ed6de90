/**
 * Mini-app log output is bounded per call and per tenant (THREATS F46; issue 10,
 * deliverable 4): a line's message and fields are capped, a call writes at most 256 KiB,
 * a tenant's lines per second are a token bucket, and every dropped line is counted in
 * `isohost_log_lines_dropped_total{tenant}` with one summary line per call, or past the
 * tenant's budget of summary lines folded into its next one. Driven
 * through the HTTP API with the platform's real logger writing into this test.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_TENANT_LINES_BURST, LOG_TENANT_LINES_PER_SEC } from '../../runtime-api/prelude/log-limits.ts';
import { SUMMARY_BURST, SUMMARY_PER_SEC } from '../../src/bindings/log/budget.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';
import { jsonLines } from '../helpers/log-sink.ts';

declare const fc: any;

interface LogLine {
  tenant?: string;
  instance?: string;
  source?: string;
  msg: string;
  fields?: unknown;
  dropped?: { per_call: number; tenant_rate: number };
  calls?: number;
}

const { lines, sink } = jsonLines<LogLine>();

const APP = bundleOf({
  wide(args: { n: number; size: number }) {
    const s = 'z'.repeat(args.size);
    for (let i = 0; i < args.n; i++) console.log(s);
    return args.n;
  },
  many(args: { n: number }) {
    for (let i = 0; i < args.n; i++) fc.log.info('line ' + i);
    return args.n;
  },
  oversized() {
    fc.log.warn('m'.repeat(20_000), { big: 'f'.repeat(20_000) });
    fc.log.info('small', { ok: 1 });
    return 'done';
  },
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    tenants: [{ id: 'wordy' }, { id: 'spiky' }, { id: 'flood' }, { id: 'quiet', isolation: 'database' }, { id: 'shaped' }, { id: 'noisy' }],
    logger: pino({ level: 'debug' }, sink),
  });
  for (const t of ['wordy', 'spiky', 'flood', 'quiet', 'shaped', 'noisy']) await s.deploy(t, 'app', APP);
});
afterAll(() => s?.dispose());

const appLines = (instance: string) => lines.filter((l) => l.instance === instance && l.source === 'miniapp');
const summaries = (instance: string) => lines.filter((l) => l.instance === instance && l.source === 'isohost' && l.dropped !== undefined);

async function droppedMetric(tenant: string): Promise<number> {
  const body = (await s.inject({ method: 'GET', url: '/metrics' })).body;
  const m = body.match(new RegExp(`^isohost_log_lines_dropped_total\\{tenant="${tenant}"\\} (\\d+)$`, 'm'));
  expect(m, 'the counter has a series for the tenant').not.toBeNull();
  return Number(m![1]);
}

describe('mini-app log limits', () => {
  it('should write at most 256 KiB of log text per call and drop the rest with one summary line', async () => {
    const id = await s.launch('wordy', 'app');
    // 100 lines of 8,000 bytes: 32 fit in 262,144 bytes, the 33rd does not.
    expect(resultOf(await s.call('wordy', id, 'wide', { n: 100, size: 8000 }))).toBe(100);
    expect(appLines(id)).toHaveLength(32);
    const summary = summaries(id);
    expect(summary).toHaveLength(1);
    expect(summary[0]!.msg).toBe('68 lines dropped: per-call log limit');
    expect(summary[0]!.dropped).toEqual({ per_call: 68, tenant_rate: 0 });
    expect(await droppedMetric('wordy')).toBe(68);

    // The budget is per call: the next call of the same instance writes again.
    expect(resultOf(await s.call('wordy', id, 'wide', { n: 3, size: 100 }))).toBe(3);
    expect(appLines(id)).toHaveLength(35);
    expect(summaries(id)).toHaveLength(1);
    expect(await droppedMetric('wordy')).toBe(68);
  });

  it('should write every line of a long synchronous loop: lines cross in batches, not one slot each', async () => {
    const id = await s.launch('spiky', 'app');
    // 600 lines in one synchronous stretch: more than the guest may have operations in flight.
    expect(resultOf(await s.call('spiky', id, 'many', { n: 600 }))).toBe(600);
    expect(appLines(id).map((l) => l.msg)).toEqual(Array.from({ length: 600 }, (_, i) => 'line ' + i));
    expect(summaries(id)).toHaveLength(0);
    expect(await droppedMetric('spiky')).toBe(0);
  });

  it('should cap one line: message cut at 8 KiB, oversized fields replaced', async () => {
    const id = await s.launch('shaped', 'app');
    expect(resultOf(await s.call('shaped', id, 'oversized', {}))).toBe('done');
    const [big, small] = appLines(id);
    expect(big!.msg).toBe('m'.repeat(8192));
    expect(big!.fields).toEqual({ truncated: true });
    expect(small).toMatchObject({ msg: 'small', fields: { ok: 1 } });
    expect(await droppedMetric('shaped')).toBe(0);
  });

  it("should rate-limit a tenant's lines while another tenant logs every line", async () => {
    const started = Date.now();
    const ids = [await s.launch('flood', 'app', 'a'), await s.launch('flood', 'app', 'b')];
    const calm = await s.launch('quiet', 'app');
    const CALLS = 40;
    const PER_CALL = 200; // 1,400 bytes: only the tenant rate drops lines
    for (let i = 0; i < CALLS; i++) {
      expect(resultOf(await s.call('flood', ids[i % 2]!, 'many', { n: PER_CALL }, i % 2 ? 'b' : 'a'))).toBe(PER_CALL);
      if (i % 10 === 0) expect(resultOf(await s.call('quiet', calm, 'many', { n: 20 }))).toBe(20);
    }
    const elapsedS = (Date.now() - started) / 1000;
    const written = ids.reduce((n, id) => n + appLines(id).length, 0);
    const dropped = ids.flatMap((id) => summaries(id)).reduce((n, l) => n + l.dropped!.per_call + l.dropped!.tenant_rate, 0);
    // Every line is either written or counted as dropped.
    expect(written + dropped).toBe(CALLS * PER_CALL);
    // No more than the bucket's burst plus what it refilled meanwhile.
    expect(written).toBeLessThanOrEqual(LOG_TENANT_LINES_BURST + Math.ceil(elapsedS * LOG_TENANT_LINES_PER_SEC) + 1);
    expect(dropped).toBeGreaterThan(0);
    const rated = ids.flatMap((id) => summaries(id)).filter((l) => l.dropped!.tenant_rate > 0);
    expect(rated.length).toBeGreaterThan(0);
    expect(rated[0]!.msg).toMatch(/^\d+ lines dropped: tenant log rate$/);
    expect(await droppedMetric('flood')).toBe(dropped);
    // The other tenant's lines were all written.
    expect(appLines(calm)).toHaveLength(4 * 20);
    expect(summaries(calm)).toHaveLength(0);
    expect(await droppedMetric('quiet')).toBe(0);
  });

  it("should bound the host's own summary lines: past the tenant's budget a call's drops fold into the next summary, none lost", async () => {
    const id = await s.launch('noisy', 'app');
    // More calls than the bucket's burst plus 8 s of its refill: folding shows even on a slow machine.
    const CALLS = SUMMARY_BURST + 40;
    const started = Date.now();
    // Every call logs more than its 256 KiB (33 × 8 KiB), so every call drops lines (per call, then also by the tenant's byte rate).
    for (let i = 0; i < CALLS; i++) expect(resultOf(await s.call('noisy', id, 'wide', { n: 33, size: 8192 }))).toBe(33);
    const elapsedS = (Date.now() - started) / 1000;
    const total = await droppedMetric('noisy');
    const reported = () => summaries(id).reduce((n, l) => n + l.dropped!.per_call + l.dropped!.tenant_rate, 0);
    // The folded rest is written when the summary bucket refills (within 1 / SUMMARY_PER_SEC s).
    await expect.poll(reported, { timeout: 3000, interval: 50 }).toBe(total);
    const written = summaries(id);
    expect(written.length).toBeLessThan(CALLS);
    expect(written.length).toBeGreaterThanOrEqual(SUMMARY_BURST);
    // No more lines than the bucket's burst, what it refilled while the calls ran, and the folded rest.
    expect(written.length).toBeLessThanOrEqual(SUMMARY_BURST + Math.ceil(elapsedS * SUMMARY_PER_SEC) + 1);
    // Each line says how many calls it covers; together they cover every call once.
    expect(written.reduce((n, l) => n + (l.calls ?? 1), 0)).toBe(CALLS);
    const folded = written.filter((l) => (l.calls ?? 1) > 1);
    expect(folded.length).toBeGreaterThan(0);
    // Its reasons are those of the calls it covers: calls made while the tenant's byte rate was
    // spent dropped every line for the rate before any reached the per-call cap.
    expect(folded[0]!.msg).toMatch(/^\d+ lines dropped in \d+ calls: (per-call log limit, tenant log rate|per-call log limit|tenant log rate)$/);
    expect(folded[0]!.tenant).toBe('noisy');
  });
});
