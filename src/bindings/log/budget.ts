/**
 * What bounds one tenant's log output (THREATS F46): a token bucket of lines and one of
 * bytes per tenant, the bytes each running call has written, and the count of dropped
 * lines behind `isohost_log_lines_dropped_total`. The numbers live in
 * runtime-api/prelude/log-limits.ts, shared with the guest half.
 */
import type { Logger } from 'pino';
import { TokenBucket } from '../../token-bucket.ts';
import type { CallScope } from '../types.ts';
import type { TenantContext } from '../../tenants/context.ts';
import {
  LOG_BATCH_MAX_CHARS, LOG_BATCH_MAX_LINES, LOG_CALL_MAX_BYTES, LOG_TENANT_BYTES_BURST, LOG_TENANT_BYTES_PER_SEC, LOG_TENANT_LINES_BURST, LOG_TENANT_LINES_PER_SEC,
  type LogDropReason,
} from '../../../runtime-api/prelude/log-limits.ts';

/** Log accounting of one running call; the summary line is written when the call ends. */
export interface CallLog {
  bytes: number;
  dropped: Record<LogDropReason, number>;
  /** Set once the call's end is watched (only calls that dropped lines are). */
  watched: boolean;
}

/**
 * The host's own lines about a tenant's dropped lines (`N lines dropped: …`): a bucket of
 * SUMMARY_BURST lines refilled at SUMMARY_PER_SEC. Each call that drops lines is owed one,
 * but those lines are written on the host's event loop too, and a tenant whose every call
 * drops a line (a one-line log in each of thousands of calls a second, once its rate is
 * spent) turned that one line per call into the host's busiest work: half of the event
 * loop's busy time during neighbour.p99_ratio.log-flood was writing them (CPU profile,
 * `writeSync` under `summary`). Past the bucket, a call's counts wait and go out folded
 * into the tenant's next summary line, which says how many calls it covers; a timer
 * writes it when the bucket refills, so every dropped line is reported within
 * 1 / SUMMARY_PER_SEC seconds of its call's end. The counter counts them at once either way.
 */
export const SUMMARY_BURST = 50;
export const SUMMARY_PER_SEC = 5;

/** Dropped lines not reported yet: the calls they came from, by reason, and the logger of the last of those calls. */
interface PendingSummary {
  calls: number;
  call: number;
  rate: number;
  logger: Logger;
}

const REASON_TEXT: Record<LogDropReason, string> = { call: 'per-call log limit', rate: 'tenant log rate' };

/** One tenant's log budget. Shared by all of the tenant's instances. */
export class TenantLogBudget {
  readonly #lines = new TokenBucket(LOG_TENANT_LINES_BURST, LOG_TENANT_LINES_PER_SEC, 1000);
  readonly #bytes = new TokenBucket(LOG_TENANT_BYTES_BURST, LOG_TENANT_BYTES_PER_SEC, 1000);
  #dropped = 0;
  readonly #calls = new WeakMap<CallScope, CallLog>();
  readonly #summaries = new TokenBucket(SUMMARY_BURST, SUMMARY_PER_SEC, 1000);
  #pending: PendingSummary | undefined;
  #flushTimer: NodeJS.Timeout | undefined;

  /** Lines of this tenant dropped since start (per-call limit and tenant rate together). */
  get dropped(): number {
    return this.#dropped;
  }

  callLog(scope: CallScope): CallLog {
    let c = this.#calls.get(scope);
    if (c === undefined) this.#calls.set(scope, (c = { bytes: 0, dropped: { call: 0, rate: 0 }, watched: false }));
    return c;
  }

  /** Admits one line of `bytes` for the call, or says why it is dropped (and counts the drop). */
  admit(call: CallLog, bytes: number): LogDropReason | undefined {
    if (call.bytes + bytes > LOG_CALL_MAX_BYTES) {
      call.bytes = LOG_CALL_MAX_BYTES; // nothing more fits this call, not even a short line
      return this.noteDropped(call, 'call', 1);
    }
    if (this.#lines.tokens < 1 || this.#bytes.tokens < bytes) return this.noteDropped(call, 'rate', 1);
    this.#lines.take();
    this.#bytes.take(bytes);
    call.bytes += bytes;
    return undefined;
  }

  /**
   * Milliseconds until the buckets hold one guest batch again (LOG_BATCH_MAX_LINES lines
   * and LOG_BATCH_MAX_CHARS bytes), at least 1: what a `rate` reply asks the guest to wait
   * before it sends again. Waiting for a whole batch rather than a single token keeps a
   * tenant at its rate with one message per batch, not one refused message per token;
   * the buckets keep filling meanwhile, so the lines it may write per second are the same.
   */
  retryMs(): number {
    return Math.max(1, Math.ceil(Math.max(this.#lines.msUntil(LOG_BATCH_MAX_LINES), this.#bytes.msUntil(LOG_BATCH_MAX_CHARS))));
  }

  /** Whole lines and bytes the buckets hold now: the `budget` of a reply that wrote every line of its batch. */
  left(): { lines: number; bytes: number } {
    return { lines: Math.floor(this.#lines.tokens), bytes: Math.floor(this.#bytes.tokens) };
  }

  noteDropped(call: CallLog, reason: LogDropReason, lines: number): LogDropReason {
    call.dropped[reason] += lines;
    this.#dropped += lines;
    return reason;
  }

  /**
   * Reports the lines a call dropped, when it ends: one summary line, written with the
   * call's `logger` (tenant, app, instance), now if the summary bucket holds one, else
   * folded into the tenant's next. Never drops a count.
   */
  reportDropped(dropped: Record<LogDropReason, number>, logger: Logger): void {
    if (dropped.call + dropped.rate === 0) return;
    const p = (this.#pending ??= { calls: 0, call: 0, rate: 0, logger });
    p.calls++;
    p.call += dropped.call;
    p.rate += dropped.rate;
    p.logger = logger;
    if (this.#flushTimer === undefined) this.#flush();
  }

  /** Writes the pending summary if the bucket holds a line, else arms one timer for when it will. */
  #flush(): void {
    const p = this.#pending;
    if (p === undefined) return;
    if (this.#summaries.tokens < 1) {
      const waitMs = Math.ceil(this.#summaries.msUntil());
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = undefined;
        this.#flush();
      }, waitMs);
      return;
    }
    this.#summaries.take();
    this.#pending = undefined;
    const total = p.call + p.rate;
    const reasons = (['call', 'rate'] as const).filter((r) => p[r] > 0).map((r) => REASON_TEXT[r]);
    const fields = { source: 'isohost', dropped: { per_call: p.call, tenant_rate: p.rate }, ...(p.calls > 1 ? { calls: p.calls } : {}) };
    try {
      p.logger.warn(fields, `${total} lines dropped${p.calls > 1 ? ` in ${p.calls} calls` : ''}: ${reasons.join(', ')}`);
    } catch {
      // From the timer, after the platform closed its log destination: the counter has them.
    }
  }
}

const budgets = new WeakMap<TenantContext, TenantLogBudget>();

/** The log budget of `tenant` (one per TenantContext, made on first use). */
export function tenantLogBudget(tenant: TenantContext): TenantLogBudget {
  let b = budgets.get(tenant);
  if (b === undefined) budgets.set(tenant, (b = new TenantLogBudget()));
  return b;
}
