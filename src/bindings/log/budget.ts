/**
 * What bounds one tenant's log output (THREATS F46): a token bucket of lines and one of
 * bytes per tenant, the bytes each running call has written, and the count of dropped
 * lines behind `isohost_log_lines_dropped_total`. The numbers live in
 * runtime-api/prelude/log-limits.ts, shared with the guest half.
 */
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

/** One tenant's log budget. Shared by all of the tenant's instances. */
export class TenantLogBudget {
  #lines = LOG_TENANT_LINES_BURST;
  #bytes = LOG_TENANT_BYTES_BURST;
  #at = Date.now();
  #dropped = 0;
  readonly #calls = new WeakMap<CallScope, CallLog>();

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
    this.#refill();
    if (this.#lines < 1 || this.#bytes < bytes) return this.noteDropped(call, 'rate', 1);
    this.#lines -= 1;
    this.#bytes -= bytes;
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
    this.#refill();
    const lines = (LOG_BATCH_MAX_LINES - this.#lines) / LOG_TENANT_LINES_PER_SEC;
    const bytes = (LOG_BATCH_MAX_CHARS - this.#bytes) / LOG_TENANT_BYTES_PER_SEC;
    return Math.max(1, Math.ceil(Math.max(lines, bytes) * 1000));
  }

  /** Whole lines and bytes the buckets hold now: the `budget` of a reply that wrote every line of its batch. */
  left(): { lines: number; bytes: number } {
    this.#refill();
    return { lines: Math.floor(this.#lines), bytes: Math.floor(this.#bytes) };
  }

  noteDropped(call: CallLog, reason: LogDropReason, lines: number): LogDropReason {
    call.dropped[reason] += lines;
    this.#dropped += lines;
    return reason;
  }

  #refill(): void {
    const now = Date.now();
    const s = (now - this.#at) / 1000;
    if (s <= 0) return;
    this.#at = now;
    this.#lines = Math.min(LOG_TENANT_LINES_BURST, this.#lines + s * LOG_TENANT_LINES_PER_SEC);
    this.#bytes = Math.min(LOG_TENANT_BYTES_BURST, this.#bytes + s * LOG_TENANT_BYTES_PER_SEC);
  }
}

const budgets = new WeakMap<TenantContext, TenantLogBudget>();

/** The log budget of `tenant` (one per TenantContext, made on first use). */
export function tenantLogBudget(tenant: TenantContext): TenantLogBudget {
  let b = budgets.get(tenant);
  if (b === undefined) budgets.set(tenant, (b = new TenantLogBudget()));
  return b;
}
