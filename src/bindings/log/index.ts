/**
 * Host half of `fc.log` and `console`. The guest's message and fields go under
 * `msg` and `fields`; tenant, app and instance come from the host-side child logger,
 * so a guest cannot forge them (issue 2, item 6).
 *
 * Output is bounded (THREATS F46; numbers in runtime-api/prelude/log-limits.ts): a line's
 * message and fields are capped, a call writes at most 256 KiB, and a tenant's lines and
 * bytes per second are token buckets (budget.ts). Lines come in batches (`{ lines }`, up
 * to LOG_MESSAGE_MAX_LINES) and are admitted one by one, in order; at the first refusal
 * the rest of the batch is dropped and the reply tells the guest why, so it stops sending
 * for the rest of the call (and, for the tenant rate, until `retry_ms` has passed); a batch
 * written whole is answered with what the tenant's buckets hold now, which bounds what the
 * guest sends one-way at its call's end; the guest reports the lines it dropped itself
 * (`log.dropped`). Every dropped line counts in `isohost_log_lines_dropped_total{tenant}`
 * at once, and a call that dropped lines ends with one summary line, or, past the
 * tenant's budget of summary lines, is folded into its next one (budget.ts).
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import { IsohostError } from '../../errors.ts';
import type { TenantContext } from '../../tenants/context.ts';
import type { Binding, CallScope, Reply } from '../types.ts';
import { type CallLog, type TenantLogBudget, tenantLogBudget } from './budget.ts';
import { tenantLogHub } from './hub.ts';
import { LOG_FIELDS_MAX_CHARS, LOG_MESSAGE_MAX_CHARS, LOG_MESSAGE_MAX_LINES, type LogDropReason, type LogReply } from '../../../runtime-api/prelude/log-limits.ts';

const logLine = z.strictObject({
  level: z.enum(['debug', 'info', 'warn', 'error']),
  message: z.string().max(LOG_MESSAGE_MAX_CHARS),
  fields: z.unknown().optional(),
});
/** One `log` message: a batch of lines, in the order the guest wrote them. */
const logBatch = z.strictObject({ lines: z.array(logLine).min(1).max(LOG_MESSAGE_MAX_LINES) });
/** Lines the guest dropped before they crossed; bounded so a forged report cannot run the counter up without limit. */
const droppedReport = z.strictObject({
  call: z.number().int().min(0).max(10_000_000),
  rate: z.number().int().min(0).max(10_000_000),
});
const EMPTY: Reply = { json: '' };
const DROPPED_CALL: Reply = { json: '{"dropped":"call"}' };

/**
 * Bytes of lines written per turn of the event loop. A batch can hold up to 256 KiB (the
 * end-of-call flush of a call at its cap): serialised and written in one go it held the
 * host's event loop 4–9 ms, the p99 every other tenant saw during a log flood
 * (neighbour.p99_ratio.log-flood). Written in slices with a turn between them, the wait
 * any other request can see is one slice.
 */
const SLICE_BYTES = 16 * 1024;
/**
 * Bytes of an instance's batches waiting for their turn (messages and fields, as the
 * budget counts them). More than this means the guest sends faster than the host writes
 * (only possible while the tenant's burst lasts): the batch is refused as over the tenant
 * rate at once, unwritten.
 */
const MAX_QUEUED_BYTES = 1024 * 1024;

/** One line as it is admitted and written: fields over the cap already replaced, its size known. */
interface Line {
  level: z.infer<typeof logLine>['level'];
  message: string;
  fields: unknown;
  /** UTF-8 bytes of the message and the fields' JSON: what the budget charges. */
  bytes: number;
}

/** Caps a guest line's fields and measures it, once, when its batch arrives. */
function measured(line: z.infer<typeof logLine>): Line {
  let fields = line.fields;
  let fieldsText = fields === undefined ? '' : JSON.stringify(fields);
  if (fieldsText.length > LOG_FIELDS_MAX_CHARS) {
    fields = { truncated: true };
    fieldsText = '{"truncated":true}';
  }
  return { level: line.level, message: line.message, fields, bytes: Buffer.byteLength(line.message) + Buffer.byteLength(fieldsText) };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The log binding's ops: the ones the prelude also sends one way, at a call's end (prelude log.ts endCallLog). */
export const LOG_OPS: readonly string[] = Object.freeze(['log', 'log.dropped']);

/** The log binding of one instance of `tenant`; `logger` already names tenant, app and instance. */
export function logBinding(tenant: TenantContext, logger: Logger): Binding {
  const budget = tenantLogBudget(tenant);
  const hub = tenantLogHub(tenant);
  /** The instance's batches are written one after another, in the order they came: each waits for the one before. */
  let tail: Promise<unknown> = Promise.resolve();
  let queuedBytes = 0;
  /** Batches in the queue (a batch of empty lines counts here, not in queuedBytes). */
  let queued = 0;
  return {
    ops: LOG_OPS,
    async handle(op, payload, _bytes, scope) {
      const call = budget.callLog(scope);
      if (op === 'log.dropped') {
        const r = droppedReport.safeParse(payload);
        if (!r.success) throw new IsohostError('invalid_request', 'bad log.dropped report');
        if (r.data.call > 0) budget.noteDropped(call, 'call', r.data.call);
        if (r.data.rate > 0) budget.noteDropped(call, 'rate', r.data.rate);
        watchCallEnd(budget, call, scope, logger);
        return EMPTY;
      }
      const p = logBatch.safeParse(payload);
      if (!p.success) throw new IsohostError('invalid_request', 'bad log call');
      const lines = p.data.lines.map(measured);
      let bytes = 0;
      for (let i = 0; i < lines.length; i++) bytes += lines[i]!.bytes;
      if (queuedBytes > 0 && queuedBytes + bytes > MAX_QUEUED_BYTES) {
        budget.noteDropped(call, 'rate', lines.length);
        return refusal('rate', call, scope);
      }
      queuedBytes += bytes;
      queued++;
      const run = tail.then(() => writeLines(lines, call, scope));
      tail = run.catch(() => {});
      try {
        return await run;
      } finally {
        queuedBytes -= bytes;
        queued--;
      }
    },
    drained: () => (queued === 0 ? undefined : tail.then(() => {})),
  };

  function refusal(reason: LogDropReason, call: CallLog, scope: CallScope): Reply {
    watchCallEnd(budget, call, scope, logger);
    if (reason === 'call') return DROPPED_CALL;
    const reply: LogReply = { dropped: 'rate', retry_ms: budget.retryMs() };
    return { json: JSON.stringify(reply) };
  }

  /** Admits and writes one batch's lines in order, a slice per turn of the event loop; at the first refusal the rest are dropped. */
  async function writeLines(lines: Line[], call: CallLog, scope: CallScope): Promise<Reply> {
    const time = new Date().toISOString();
    let slice = 0;
    for (let i = 0; i < lines.length; i++) {
      if (slice >= SLICE_BYTES) {
        slice = 0;
        await nextTurn();
      }
      const line = lines[i]!;
      const fields = line.fields;
      slice += line.bytes;
      const refused = budget.admit(call, line.bytes);
      if (refused !== undefined) {
        // The rest of the batch is dropped with it: the guest stops sending on this reply.
        if (i + 1 < lines.length) budget.noteDropped(call, refused, lines.length - i - 1);
        return refusal(refused, call, scope);
      }
      logger[line.level]({ source: 'miniapp', fields }, line.message);
      // The tenant's own log stream (hub.ts): only lines its budget let through reach it.
      hub.publish({
        time,
        type: 'log',
        request_id: scope.requestId ?? null,
        app: scope.appId,
        version: scope.appVersion,
        instance: scope.instanceId,
        level: line.level,
        msg: line.message,
        ...(fields === undefined ? {} : { fields }),
      });
    }
    // What the buckets hold now bounds what the guest sends at its call's end (log-limits.ts, LogReply).
    const reply: LogReply = { budget: budget.left() };
    return { json: JSON.stringify(reply) };
  }
}

/** Reports the call's dropped lines when it ends (budget.ts reportDropped: one summary line, or folded into the tenant's next). */
function watchCallEnd(budget: TenantLogBudget, call: CallLog, scope: CallScope, logger: Logger): void {
  if (call.watched) return;
  call.watched = true;
  const report = () => budget.reportDropped(call.dropped, logger);
  if (scope.signal.aborted) report();
  else scope.signal.addEventListener('abort', report, { once: true });
}

/** Lines of `tenant` dropped so far, for `isohost_log_lines_dropped_total`. */
export function droppedLogLines(tenant: TenantContext): number {
  return tenantLogBudget(tenant).dropped;
}

export type { TenantLogBudget };
