/**
 * The limits on mini-app log output (THREATS F46), in one place for both halves: the
 * guest prelude (runtime-api/prelude/log.ts) applies them first so that lines past a
 * limit never cross into the host, and the host binding (src/bindings/log/) enforces
 * them again, authoritatively. Cloudflare Workers caps a single invocation's logs at
 * 256 KB in the same spirit. Documented in README.md (Limits) and docs/SECURITY.md.
 */

/** Characters of one line's message; longer messages are cut. */
export const LOG_MESSAGE_MAX_CHARS = 8192;
/** Characters of one line's `fields` as JSON; larger fields become `{ truncated: true }`. */
export const LOG_FIELDS_MAX_CHARS = 16 * 1024;
/**
 * Bytes of log text (message + fields JSON, UTF-8) one call may write. Lines past it
 * are dropped; the call itself goes on.
 */
export const LOG_CALL_MAX_BYTES = 256 * 1024;
/**
 * Per-tenant token buckets of log lines and bytes: refill per second, and burst. The burst
 * is one second of the rate: every admitted line is written on the host's event loop, and
 * a 5 MiB burst let a flooding tenant push that much through it at once, which its
 * neighbours saw in their p99 (neighbour.p99_ratio.log-flood, alternated: attack p99
 * 4.83/4.98/4.72 → 3.38/3.76/4.07 ms).
 */
export const LOG_TENANT_LINES_PER_SEC = 1000;
export const LOG_TENANT_LINES_BURST = 1000;
export const LOG_TENANT_BYTES_PER_SEC = 1024 * 1024;
export const LOG_TENANT_BYTES_BURST = 1024 * 1024;

/**
 * Lines cross to the host in batches (one message per batch, one batch in flight per
 * instance): at most this many lines and characters per batch while a call runs. A
 * flood then costs the host's event loop a few messages per call instead of one per
 * line; small batches keep a refusal (below) close to the line it refuses.
 */
export const LOG_BATCH_MAX_LINES = 64;
export const LOG_BATCH_MAX_CHARS = 32 * 1024;
/**
 * Lines the host accepts in one `log` message. The lines still buffered when a call
 * ends go out in messages of up to this many (a call's 256 KiB bounds their total).
 */
export const LOG_MESSAGE_MAX_LINES = 256;
/** The longest back-off a `rate` reply may ask for; the guest never trusts more than this. */
export const LOG_RATE_RETRY_MAX_MS = 10_000;

/** Why lines were dropped; the host's reply to a dropped line says which, so the guest stops sending. */
export type LogDropReason = 'call' | 'rate';

/**
 * The host's reply to a `log` message: when every line was written, what the tenant's
 * buckets hold now (`budget`: whole lines and bytes), which bounds what the guest sends at
 * the call's end; else why the first refused line was (that line and the rest of the
 * message are dropped and counted by the host) and, for `rate`, the milliseconds until the
 * tenant's buckets hold a batch again, during which the guest drops lines itself.
 */
export interface LogReply {
  dropped?: LogDropReason;
  retry_ms?: number;
  budget?: { lines: number; bytes: number };
}
