/**
 * Log lines cross from a real isolate to the real host binding in batches (issue 10,
 * bench neighbour.p99_ratio.log-flood): a call writing 300 lines in a synchronous loop
 * costs the host a few `log` messages, not 300, and every line arrives in order with its
 * level and fields, including lines written right before the method returns. The
 * binding is the real one, wrapped to count the messages it handles.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  LOG_BATCH_MAX_CHARS, LOG_BATCH_MAX_LINES, LOG_CALL_MAX_BYTES, LOG_MESSAGE_MAX_LINES, LOG_TENANT_BYTES_BURST, LOG_TENANT_BYTES_PER_SEC,
  LOG_TENANT_LINES_BURST, LOG_TENANT_LINES_PER_SEC, type LogReply,
} from '../../runtime-api/prelude/log-limits.ts';
import { droppedLogLines, logBinding } from '../../src/bindings/log/index.ts';
import type { Binding, CallScope } from '../../src/bindings/types.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';
import { jsonLines } from '../helpers/log-sink.ts';

declare const fc: any;

/** Every message the log bindings handled: op and number of lines. */
const handled = vi.hoisted(() => [] as { op: string; lines: number }[]);

vi.mock('../../src/bindings/log/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/bindings/log/index.ts')>();
  return {
    ...real,
    logBinding: (...args: Parameters<typeof real.logBinding>): Binding => {
      const binding = real.logBinding(...args);
      return {
        ops: binding.ops,
        handle(op, payload, bytes, scope) {
          const lines = (payload as { lines?: unknown[] } | null)?.lines;
          handled.push({ op, lines: Array.isArray(lines) ? lines.length : 0 });
          return binding.handle(op, payload, bytes, scope);
        },
        drained: binding.drained,
      };
    },
  };
});

interface LogLine {
  level: number;
  instance?: string;
  source?: string;
  msg: string;
  fields?: unknown;
}

const { lines, sink } = jsonLines<LogLine>();

const APP = bundleOf({
  loop(args: { n: number }) {
    const levels = ['debug', 'info', 'warn', 'error'];
    for (let i = 0; i < args.n; i++) fc.log[levels[i % 4]!]('line ' + i, i % 3 === 0 ? { i } : undefined);
    return args.n;
  },
  lastSync() {
    console.log('first');
    fc.log.error('the last line', { at: 'return' });
    return 'ok';
  },
  async lastAfterAwait() {
    console.log('before');
    await new Promise((resolve) => setTimeout(resolve, 1));
    console.warn('after the await');
    return 'ok';
  },
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'chatty' }, { id: 'direct' }, { id: 'drained' }, { id: 'flood' }, { id: 'queued' }], logger: pino({ level: 'debug' }, sink) });
  await s.deploy('flood', 'app', APP);
  await s.deploy('chatty', 'app', APP);
});
afterAll(() => s?.dispose());

const PINO_LEVELS: Record<number, string> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error' };
const appLines = (instance: string) => lines.filter((l) => l.instance === instance && l.source === 'miniapp');

describe('log lines cross in batches', () => {
  it('should carry 300 lines of a synchronous loop in a few messages, in order, with levels and fields', async () => {
    const id = await s.launch('chatty', 'app');
    handled.length = 0;
    expect(resultOf(await s.call('chatty', id, 'loop', { n: 300 }))).toBe(300);
    const logMessages = handled.filter((h) => h.op === 'log');
    // One message per line before: at most one per full batch now, plus the end of the call.
    expect(logMessages.length).toBeGreaterThan(0);
    expect(logMessages.length).toBeLessThanOrEqual(Math.ceil(300 / LOG_BATCH_MAX_LINES) + 1);
    expect(logMessages.reduce((n, h) => n + h.lines, 0)).toBe(300);
    expect(handled.filter((h) => h.op === 'log.dropped')).toEqual([]);
    const levels = ['debug', 'info', 'warn', 'error'];
    expect(appLines(id).map((l) => ({ level: PINO_LEVELS[l.level], msg: l.msg, fields: l.fields }))).toEqual(
      Array.from({ length: 300 }, (_, i) => ({ level: levels[i % 4], msg: 'line ' + i, fields: i % 3 === 0 ? { i } : undefined })),
    );
  });

  it('should write the lines of a method right before it returns, synchronously or after an await', async () => {
    const id = await s.launch('chatty', 'app');
    expect(resultOf(await s.call('chatty', id, 'lastSync'))).toBe('ok');
    expect(resultOf(await s.call('chatty', id, 'lastAfterAwait'))).toBe('ok');
    expect(appLines(id).map((l) => [PINO_LEVELS[l.level], l.msg, l.fields])).toEqual([
      ['info', 'first', undefined],
      ['error', 'the last line', { at: 'return' }],
      ['info', 'before', undefined],
      ['warn', 'after the await', undefined],
    ]);
  });
});

describe('the log op, host side', () => {
  let n = 0;
  /** A running call's scope, as the instance host builds it; `end()` ends the call. */
  function callScope(tenantId: string) {
    const controller = new AbortController();
    const scope: CallScope = { instanceId: `inst-${++n}`, appId: 'app', appVersion: 'v1', tenantId, signal: controller.signal, deadline: Date.now() + 5000 };
    return { scope, end: () => controller.abort() };
  }
  const batch = (count: number, size: number) => ({ lines: Array.from({ length: count }, (_, i) => ({ level: 'info', message: String(i).padEnd(size, '.') })) });
  /** The binding as the instance host makes it: its logger names the instance. */
  const binding = (tenant: string, instance = 'inst') => logBinding(s.platform.tenants.get(tenant), s.platform.tenants.get(tenant).logger.child({ instance }));

  it('should refuse a message that is not a batch of 1 to LOG_MESSAGE_MAX_LINES valid lines', async () => {
    const log = binding('direct');
    const { scope } = callScope('direct');
    for (const bad of [
      { level: 'info', message: 'one line, the old shape' },
      { lines: [] },
      batch(LOG_MESSAGE_MAX_LINES + 1, 1),
      { lines: [{ level: 'loud', message: 'x' }] },
      { lines: [{ level: 'info', message: 'x', tenant: 'other' }] },
    ]) {
      await expect(log.handle('log', bad, undefined, scope)).rejects.toMatchObject({ code: 'invalid_request' });
    }
    // Written whole: the reply says what the tenant's buckets hold now.
    const written = JSON.parse((await log.handle('log', batch(LOG_MESSAGE_MAX_LINES, 1), undefined, scope)).json) as LogReply;
    expect(Object.keys(written)).toEqual(['budget']);
    expect(Number.isInteger(written.budget!.lines) && Number.isInteger(written.budget!.bytes)).toBe(true);
    expect(written.budget!.lines).toBeLessThanOrEqual(LOG_TENANT_LINES_BURST - LOG_MESSAGE_MAX_LINES + 50);
    expect(written.budget!.bytes).toBeLessThanOrEqual(LOG_TENANT_BYTES_BURST - LOG_MESSAGE_MAX_LINES + 50 * 1024);
  });

  it("should write a batch's lines up to the per-call cap, then count the rest and say why", async () => {
    const { scope, end } = callScope('direct');
    const log = binding('direct', scope.instanceId);
    const before = droppedLogLines(s.platform.tenants.get('direct'));
    // 100 lines of 4,000 bytes: 65 fit in the call's 256 KiB.
    const fit = Math.floor(LOG_CALL_MAX_BYTES / 4000);
    const written = lines.length;
    expect(await log.handle('log', batch(100, 4000), undefined, scope)).toEqual({ json: '{"dropped":"call"}' });
    expect(lines.slice(written).filter((l) => l.instance === scope.instanceId)).toHaveLength(fit);
    expect(droppedLogLines(s.platform.tenants.get('direct')) - before).toBe(100 - fit);
    end();
    expect(lines.at(-1)).toMatchObject({ instance: scope.instanceId, msg: `${100 - fit} lines dropped: per-call log limit` });
  });

  it("should refuse a batch at once, unwritten, while more than 1 MiB of the instance's lines wait to be written", async () => {
    const log = binding('queued');
    const before = droppedLogLines(s.platform.tenants.get('queued'));
    // Six calls' end-of-call batches of 64 lines of ~4,000 bytes, nearly all of it fields
    // (which count as the budget counts them), under every cap, sent before the host has
    // written any: the fifth would pass 1 MiB queued.
    const fieldsBatch = { lines: Array.from({ length: 64 }, () => ({ level: 'info', message: 'm', fields: { pad: '.'.repeat(3985) } })) };
    const settled: number[] = [];
    const replies = await Promise.all(
      Array.from({ length: 6 }, (_, i) => {
        const { scope } = callScope('queued');
        return log.handle('log', fieldsBatch, undefined, scope).then((reply) => {
          settled.push(i);
          return reply;
        });
      }),
    );
    for (const reply of replies.slice(0, 4)) expect(JSON.parse(reply.json)).toEqual({ budget: { lines: expect.any(Number), bytes: expect.any(Number) } });
    for (const reply of replies.slice(4)) expect(JSON.parse(reply.json)).toMatchObject({ dropped: 'rate' });
    // The refused ones did not wait behind the queue: they were answered before the first was written.
    expect(settled.slice(0, 2)).toEqual([4, 5]);
    expect(droppedLogLines(s.platform.tenants.get('queued')) - before).toBe(2 * 64);
  });

  it("should refuse past the tenant's rate with retry_ms until its buckets hold a batch", async () => {
    const log = binding('drained');
    let reply = { json: '{}' } as { json: string };
    let sent = 0;
    // Short lines, so the lines bucket empties first (many calls: each stays under its 256 KiB).
    while ((JSON.parse(reply.json) as LogReply).dropped === undefined && sent < 2 * LOG_TENANT_LINES_BURST) {
      const { scope, end } = callScope('drained');
      reply = await log.handle('log', batch(LOG_MESSAGE_MAX_LINES, 10), undefined, scope);
      sent += LOG_MESSAGE_MAX_LINES;
      end();
    }
    const parsed = JSON.parse(reply.json) as { dropped: string; retry_ms: number };
    expect(parsed.dropped).toBe('rate');
    // The buckets refill during the loop, so a little more than the burst is admitted.
    const dropped = droppedLogLines(s.platform.tenants.get('drained'));
    expect(sent - dropped).toBeGreaterThanOrEqual(LOG_TENANT_LINES_BURST);
    expect(Number.isInteger(parsed.retry_ms)).toBe(true);
    expect(parsed.retry_ms).toBeGreaterThanOrEqual(1);
    const worst = Math.max(LOG_BATCH_MAX_LINES / LOG_TENANT_LINES_PER_SEC, LOG_BATCH_MAX_CHARS / LOG_TENANT_BYTES_PER_SEC) * 1000;
    expect(parsed.retry_ms).toBeLessThanOrEqual(Math.ceil(worst));
  });
});

describe('a log flood over the tenant rate', () => {
  it('should cost the host about a message per call and count every line it drops', async () => {
    const ids = [await s.launch('flood', 'app', 'a'), await s.launch('flood', 'app', 'b')];
    handled.length = 0;
    const CALLS = 40;
    const PER_CALL = 200;
    for (let i = 0; i < CALLS; i++) expect(resultOf(await s.call('flood', ids[i % 2]!, 'loop', { n: PER_CALL }, i % 2 ? 'b' : 'a'))).toBe(PER_CALL);
    const written = ids.reduce((sum, id) => sum + appLines(id).length, 0);
    const reported = lines.filter((l) => ids.includes(l.instance!) && l.source === 'isohost').map((l) => l as unknown as { dropped: { per_call: number; tenant_rate: number } });
    const dropped = reported.reduce((sum, l) => sum + l.dropped.per_call + l.dropped.tenant_rate, 0);
    expect(written + dropped).toBe(CALLS * PER_CALL);
    expect(dropped).toBe(droppedLogLines(s.platform.tenants.get('flood')));
    expect(reported.some((l) => l.dropped.tenant_rate > 0)).toBe(true);
    // A line per message before; now a batch and the end of the call at most, and nothing during a back-off.
    expect(handled.filter((h) => h.op === 'log').length).toBeLessThanOrEqual(2 * CALLS);
  });
});
