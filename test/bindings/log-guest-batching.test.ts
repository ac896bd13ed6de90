/**
 * The guest half of `fc.log` (runtime-api/prelude/log.ts) against a scripted host port:
 * lines cross in batches, one batch in flight, the rest at the call's end as one-way
 * messages; a refusal stops the call's lines, and a `rate` refusal's `retry_ms` stops
 * the instance's lines across calls. The prelude modules run here as they run in the
 * isolate (they use only saved built-ins); the host side is what this test replies,
 * so every reply and its timing is chosen here. The real host path is in
 * log-batching.test.ts and test/http/log-limits.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { installHostPort, settle } from '../../runtime-api/prelude/host.ts';
import { beginCallLog, endCallLog, log } from '../../runtime-api/prelude/log.ts';
import { LOG_BATCH_MAX_CHARS, LOG_BATCH_MAX_LINES, LOG_CALL_MAX_BYTES, LOG_MESSAGE_MAX_LINES, LOG_TENANT_LINES_PER_SEC } from '../../runtime-api/prelude/log-limits.ts';

interface Sent {
  id: number;
  op: string;
  payload: any;
}
interface WireLine {
  level: string;
  message: string;
  fields?: unknown;
}

let sent: Sent[] = [];
installHostPort(
  () => {
    throw new Error('no synchronous utility in this test');
  },
  (id, op, payload) => void sent.push({ id, op, payload: JSON.parse(payload) }),
);

/** Lets every queued microtask run (the guest's flushes and reply handlers). */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));
const logMessages = () => sent.filter((m) => m.op === 'log');
const linesOf = (messages: Sent[]): WireLine[] => messages.flatMap((m) => m.payload.lines as WireLine[]);
const report = () => sent.filter((m) => m.op === 'log.dropped').map((m) => m.payload);
/** Replies to every `log` request not answered yet with `json` (default: all written). */
function replyAll(answered: Set<number>, json = ''): void {
  for (const m of logMessages()) {
    if (m.id === 0 || answered.has(m.id)) continue;
    answered.add(m.id);
    settle(m.id, true, json, undefined);
  }
}

afterEach(() => {
  endCallLog();
  sent = [];
});

describe('fc.log, guest side', () => {
  it('should send a synchronous stretch of 300 lines in a few messages, in order, with levels and fields', async () => {
    beginCallLog();
    const levels = ['debug', 'info', 'warn', 'error'] as const;
    for (let i = 0; i < 300; i++) log[levels[i % 4]!]('line ' + i, i % 3 === 0 ? { i } : undefined);
    expect(sent).toEqual([]); // nothing crosses until the stretch ends
    await settled();
    // One batch in flight: the next goes only when its reply comes.
    expect(logMessages()).toHaveLength(1);
    expect(logMessages()[0]!.payload.lines).toHaveLength(LOG_BATCH_MAX_LINES);
    const answered = new Set<number>();
    replyAll(answered);
    await settled();
    expect(logMessages()).toHaveLength(2);
    // The call ends with a batch in flight: what is still buffered goes out at once, one-way (id 0).
    endCallLog();
    const messages = logMessages();
    expect(messages).toHaveLength(3);
    expect(messages.map((m) => m.id === 0)).toEqual([false, false, true]);
    expect(linesOf(messages)).toEqual(
      Array.from({ length: 300 }, (_, i) => ({ level: levels[i % 4], message: 'line ' + i, ...(i % 3 === 0 ? { fields: { i } } : {}) })),
    );
    expect(report()).toEqual([]);
  });

  it('should cut batches at LOG_BATCH_MAX_CHARS and the end-of-call messages at LOG_MESSAGE_MAX_LINES lines', async () => {
    beginCallLog();
    const kib = 'k'.repeat(1000);
    for (let i = 0; i < 40; i++) log.info(kib);
    await settled();
    const first = logMessages()[0]!.payload.lines as WireLine[];
    expect(first).toHaveLength(Math.floor(LOG_BATCH_MAX_CHARS / 1000));
    endCallLog();
    expect(linesOf(logMessages())).toHaveLength(40);
    sent = [];

    beginCallLog();
    for (let i = 0; i < 600; i++) log.info('s' + i);
    endCallLog(); // before any microtask: everything leaves at the end
    const sizes = logMessages().map((m) => m.payload.lines.length);
    expect(sizes).toEqual([LOG_MESSAGE_MAX_LINES, LOG_MESSAGE_MAX_LINES, 600 - 2 * LOG_MESSAGE_MAX_LINES]);
    expect(logMessages().every((m) => m.id === 0)).toBe(true);
  });

  it('should keep lines written right before the method returns, synchronously or after an await', async () => {
    beginCallLog();
    log.info('before');
    await settled();
    replyAll(new Set());
    await Promise.resolve();
    log.warn('right before return', { last: true });
    endCallLog();
    expect(linesOf(logMessages())).toEqual([
      { level: 'info', message: 'before' },
      { level: 'warn', message: 'right before return', fields: { last: true } },
    ]);
  });

  it('should stop the call at 256 KiB, sending the lines that fit, and report the rest', () => {
    beginCallLog();
    const line = 'c'.repeat(1000);
    for (let i = 0; i < 300; i++) log.info(line);
    endCallLog();
    const fit = Math.floor(LOG_CALL_MAX_BYTES / 1000);
    expect(linesOf(logMessages())).toHaveLength(fit);
    expect(report()).toEqual([{ call: 300 - fit, rate: 0 }]);
  });

  it("should drop the call's buffered and later lines when the host refuses one for the call", async () => {
    beginCallLog();
    for (let i = 0; i < 100; i++) log.info('x' + i);
    await settled();
    replyAll(new Set(), '{"dropped":"call"}');
    await settled();
    for (let i = 0; i < 5; i++) log.info('late');
    endCallLog();
    // Only the first batch crossed; the host counted its refused lines, the guest the 36 buffered and 5 later ones.
    expect(logMessages()).toHaveLength(1);
    expect(report()).toEqual([{ call: 100 - LOG_BATCH_MAX_LINES + 5, rate: 0 }]);
  });

  it('should count a batch refused before it crossed (in-flight slots full) as dropped, and go on', async () => {
    beginCallLog();
    for (let i = 0; i < 70; i++) log.info('f' + i);
    await settled();
    const first = logMessages()[0]!;
    settle(first.id, false, JSON.stringify({ code: 'resource_exhausted', message: 'too many' }), undefined);
    await settled();
    // The next batch went out after the failure.
    expect(logMessages()).toHaveLength(2);
    expect(logMessages()[1]!.payload.lines).toHaveLength(70 - LOG_BATCH_MAX_LINES);
    endCallLog();
    expect(report()).toEqual([{ call: LOG_BATCH_MAX_LINES, rate: 0 }]);
  });

  it("should ignore a reply to an earlier call's batch", async () => {
    beginCallLog();
    for (let i = 0; i < 3; i++) log.info('old' + i);
    await settled();
    const old = logMessages()[0]!;
    endCallLog();
    sent = [];
    beginCallLog();
    log.info('new');
    await settled();
    // The old call's refusal arrives during this call: it stops nothing here.
    settle(old.id, true, '{"dropped":"call"}', undefined);
    await settled();
    log.info('newer');
    endCallLog();
    expect(linesOf(logMessages()).map((l) => l.message)).toEqual(['new', 'newer']);
    expect(report()).toEqual([]);
  });
  // Last: the long back-off it ends with outlives its calls, as it should.
  it("should send at a call's end no more than the budget the host's last reply gave, and what refilled since, counting the rest as rate", async () => {
    const answered = new Set<number>();
    beginCallLog();
    log.info('first');
    await settled();
    const repliedAt = Date.now();
    replyAll(answered, JSON.stringify({ budget: { lines: 5, bytes: 1_000_000 } }));
    await settled();
    endCallLog();
    sent = [];

    // 300 lines written and the call ends at once: what goes is the budget and its refill since.
    beginCallLog();
    for (let i = 0; i < 300; i++) log.info('l' + i);
    endCallLog();
    const refill = Math.ceil(((Date.now() - repliedAt) / 1000) * LOG_TENANT_LINES_PER_SEC) + 1;
    const went = linesOf(logMessages()).length;
    expect(went).toBeGreaterThanOrEqual(5);
    expect(went).toBeLessThanOrEqual(5 + refill);
    expect(logMessages().every((m) => m.id === 0)).toBe(true);
    expect(report()).toEqual([{ call: 0, rate: 300 - went }]);
    sent = [];

    // That budget is spent: the next call right after sends only what refilled meanwhile.
    const spentAt = Date.now();
    beginCallLog();
    for (let i = 0; i < 100; i++) log.info('m' + i);
    endCallLog();
    expect(linesOf(logMessages()).length).toBeLessThanOrEqual(Math.ceil(((Date.now() - spentAt) / 1000) * LOG_TENANT_LINES_PER_SEC) + 1);
  });

  it("should take what a call's end sent after a batch off the budget that batch's late reply gives", async () => {
    // The buckets are full by the last reply (the calls before this test left their own reckoning).
    beginCallLog();
    log.info('start');
    await settled();
    replyAll(new Set(), JSON.stringify({ budget: { lines: 1000, bytes: 1_000_000 } }));
    await settled();
    endCallLog();
    sent = [];
    // A synchronous flood: its first batch goes, the call ends (the rest one-way, within that budget), and the reply comes after.
    beginCallLog();
    for (let i = 0; i < 100; i++) log.info('f' + i);
    await settled();
    const first = logMessages()[0]!;
    expect(first.payload.lines).toHaveLength(LOG_BATCH_MAX_LINES);
    endCallLog();
    expect(linesOf(logMessages())).toHaveLength(100);
    const repliedAt = Date.now();
    settle(first.id, true, JSON.stringify({ budget: { lines: 40, bytes: 1_000_000 } }), undefined);
    await settled();
    sent = [];
    // The buckets held 40 lines after the batch; the call's end then sent 36: 4 are left, and the refill since.
    beginCallLog();
    for (let i = 0; i < 100; i++) log.info('g' + i);
    endCallLog();
    const went = linesOf(logMessages()).length;
    expect(went).toBeGreaterThanOrEqual(4);
    expect(went).toBeLessThanOrEqual(4 + Math.ceil(((Date.now() - repliedAt) / 1000) * LOG_TENANT_LINES_PER_SEC) + 1);
    expect(report()).toEqual([{ call: 0, rate: 100 - went }]);
  });

  it("should back off for a rate refusal's retry_ms across calls, counting the lines as rate", async () => {
    // A short back-off passes and lines cross again.
    beginCallLog();
    for (let i = 0; i < 70; i++) log.info('r' + i);
    await settled();
    replyAll(new Set(), '{"dropped":"rate","retry_ms":5}');
    await settled();
    endCallLog();
    expect(report()).toEqual([{ call: 0, rate: 70 - LOG_BATCH_MAX_LINES }]);
    sent = [];
    await new Promise((resolve) => setTimeout(resolve, 20));
    beginCallLog();
    log.info('after the back-off');
    await settled();
    expect(linesOf(logMessages())).toEqual([{ level: 'info', message: 'after the back-off' }]);
    // A long one (capped at LOG_RATE_RETRY_MAX_MS, still seconds ahead), whose reply comes
    // after its call ended (a synchronous flood's first batch): the back-off still holds.
    endCallLog();
    replyAll(new Set(), '{"dropped":"rate","retry_ms":60000}');
    await settled();
    sent = [];

    // The next calls of the instance: nothing crosses but the report.
    for (let call = 0; call < 2; call++) {
      beginCallLog();
      for (let i = 0; i < 50; i++) log.error('still flooding');
      await settled();
      endCallLog();
      expect(logMessages()).toEqual([]);
      expect(report()).toEqual([{ call: 0, rate: 50 }]);
      sent = [];
    }
  });

});
