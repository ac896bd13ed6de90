/**
 * Log lines cross from a real isolate to the real host binding in batches (issue 10,
 * bench neighbour.p99_ratio.log-flood): a call writing 300 lines in a synchronous loop
 * costs the host a few `log` messages, not 300, and every line arrives in order with its
 * level and fields, including lines written right before the method returns. The
 * binding is the real one, wrapped to count the messages it handles.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOG_BATCH_MAX_LINES } from '../../runtime-api/prelude/log-limits.ts';
import type { Binding } from '../../src/bindings/types.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

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

const lines: LogLine[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as LogLine);
    done();
  },
});

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
  s = await startTestServer({ tenants: [{ id: 'chatty' }], logger: pino({ level: 'debug' }, sink) });
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
