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
/** Per-tenant token bucket of log lines: refill per second, and burst. */
export const LOG_TENANT_LINES_PER_SEC = 1000;
export const LOG_TENANT_LINES_BURST = 5000;
/** Per-tenant token bucket of log bytes: refill per second, and burst. */
export const LOG_TENANT_BYTES_PER_SEC = 1024 * 1024;
export const LOG_TENANT_BYTES_BURST = 5 * 1024 * 1024;

/** Why lines were dropped; the host's reply to a dropped line says which, so the guest stops sending. */
export type LogDropReason = 'call' | 'rate';
