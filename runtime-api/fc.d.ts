/**
 * The isohost platform API, as seen by mini-app code inside its isolate.
 *
 * A mini-app is one self-contained ES module; its exported functions are its methods.
 * Each method receives one JSON value and returns (or resolves to) a JSON value.
 * Exactly one platform global exists: `fc`. Its storage, fetch and session are bound,
 * by the host, to the tenant that launched the instance: no API here takes or reveals
 * a tenant, and none can reach another tenant's data.
 *
 * Errors thrown by `fc.*` are `Error`s (or `TypeError`s for bad arguments) with a
 * string `code`: `invalid_request`, `payload_too_large`, `resource_exhausted`,
 * `timeout`, `egress_denied`, `egress_failed`, `storage_error`. A method that lets
 * `resource_exhausted` or `timeout` escape fails the call with that code; any other
 * escaping error fails the call with `miniapp_error` (HTTP 422) and the bundle line.
 *
 * Beside `fc`, the usual web globals exist (`console`, `URL`, `TextEncoder`, `fetch`,
 * `Response`, timers, …; see README). **`WebAssembly` is not offered**:
 * `typeof WebAssembly === "undefined"`. A Wasm memory lives outside the isolate's heap,
 * where the tenant's `memory_mb` cannot count it, so a bundle cannot use Wasm until it
 * can be counted; a bundle that touches `WebAssembly` at load time fails its upload.
 *
 * @example
 * export async function getProfile() {
 *   const user = fc.session.user;
 *   if (!user) throw new Error('sign in first');
 *   return (await fc.storage.get(`profile:${user.sub}`)) ?? null;
 * }
 */

/**
 * A value that JSON carries unchanged. Every value the platform serialises for a
 * mini-app — `fc.storage.set` and `batch` values, a method's return value,
 * `Response.json` data — must be one; `JSON.stringify` alone would silently reshape it
 * (a function property vanishes, a `Map` becomes `{}`, `NaN` becomes `null`), so isohost
 * refuses instead, with a `TypeError` (code `invalid_request`) that names the path inside
 * the value: `value.f: functions cannot be stored`, `result[0]: Map objects cannot be
 * returned` (a method's result fails the call as `miniapp_error`).
 *
 * Accepted: `null`, booleans, strings, finite numbers, arrays, plain objects (prototype
 * `Object.prototype` or `null`), and any object with a `toJSON` method, as what that
 * returns — `Date` stores its ISO string (read back as a string). A property whose value
 * is `undefined` is left out (reading it gives `undefined` either way), symbol-keyed
 * properties are not data and are not read, and a method returning `undefined` answers
 * `null`. Refused anywhere in the value: functions, symbols, bigints, `NaN`/`±Infinity`,
 * `undefined` (or a hole) in an array, `Map`, `Set`, typed arrays, `ArrayBuffer`, class
 * instances, boxed primitives, and cycles. Each property is read once (a getter runs once).
 * A shared (acyclic) object is stored once per place it occurs.
 *
 * @example
 * await fc.storage.set('k', { at: new Date() });   // stored as { at: "2026-…Z" }
 * await fc.storage.set('k', { tags: new Set() });  // TypeError: value.tags: Set objects cannot be stored …
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface FcApp {
  /** The app id it was deployed (or run) as, e.g. `"notes"`. Never the tenant. */
  readonly id: string;
  /** The active version (first 16 hex digits of the bundle's sha256). */
  readonly version: string;
}

export interface FcUser {
  /** The verified subject (`sub` claim) of the caller's token. */
  readonly sub: string;
  /**
   * An allowlist of the verified token's claims (`name`, `email`, `roles`, `scope`,
   * `iss`, `aud` when present); never the raw token.
   */
  readonly claims: Readonly<Record<string, Json>>;
}

export interface FcListOptions {
  /** Only keys starting with this prefix. Default `""` (all of the app's keys). */
  prefix?: string;
  /** Page size, 1..1000. Default 100. */
  limit?: number;
  /** The `cursor` of the previous page; omit (or null) for the first page. */
  cursor?: string | null;
}

export type FcBatchOp = { op: 'set'; key: string; value: Json } | { op: 'delete'; key: string };

/**
 * The app's own keyspace in its tenant's store. Keys are strings of 1..512 UTF-8
 * bytes (any characters); values are JSON up to 1 MiB serialized. A write resolves
 * only once it is durable on disk. Writes beyond the tenant's `storage_mb` quota reject
 * with `resource_exhausted` and store nothing. At most 256 `fc` operations may be in
 * flight per instance; more reject at once with `resource_exhausted`.
 */
export interface FcStorage {
  /** The value, or `null` when the key is absent. @example await fc.storage.get("user:1") */
  get(key: string): Promise<Json>;
  /** Stores a JSON value (see {@link Json}: refused, not reshaped). Rejects with a `TypeError` (code `invalid_request` / `payload_too_large`) on a bad key or value. */
  set(key: string, value: Json): Promise<void>;
  /** Deletes the key (no error when absent). */
  delete(key: string): Promise<void>;
  /**
   * Keys in UTF-8 byte order, a page at a time.
   * @example
   * let cursor = null;
   * do { const page = await fc.storage.list({ prefix: "note:", cursor }); cursor = page.cursor; } while (cursor);
   */
  list(options?: FcListOptions): Promise<{ entries: { key: string; value: Json }[]; cursor: string | null }>;
  /** Applies up to 1000 operations (8 MiB) atomically: all or none. */
  batch(ops: FcBatchOp[]): Promise<void>;
}

/**
 * Structured log lines (pino JSON on the host), tagged by the host with tenant, app,
 * version and instance; the mini-app cannot set or forge those. `console.*` writes
 * here too. Logging never throws and never fails a call; output is bounded instead:
 * - a message is cut at 8 KiB; fields over 16 KiB of JSON become `{ truncated: true }`;
 * - one call writes at most 256 KiB of log text (message + fields, UTF-8); later lines
 *   of that call are dropped;
 * - a tenant writes at most 1,000 lines/s (burst 5,000) and 1 MiB/s (burst 5 MiB)
 *   across all its instances; lines past that are dropped.
 * A call that dropped lines ends with one host line `N lines dropped: per-call log
 * limit` (or `tenant log rate`), and the operator's `isohost_log_lines_dropped_total`
 * counts them.
 */
export interface FcLog {
  debug(message: string, fields?: Record<string, Json>): void;
  info(message: string, fields?: Record<string, Json>): void;
  warn(message: string, fields?: Record<string, Json>): void;
  error(message: string, fields?: Record<string, Json>): void;
}

export interface Fc {
  readonly app: FcApp;
  readonly session: { readonly user: FcUser | null };
  readonly storage: FcStorage;
  /**
   * WHATWG `fetch`, through the host's egress proxy. Only hosts on the tenant's
   * network allowlist are reachable (deny by default); loopback, private and
   * link-local addresses only when an IP/CIDR rule names them. Redirects are followed
   * (max 10), each hop re-checked. At most `fetch_per_call` fetches per call and
   * `fetch_response_mb` per response. Rejects with `code` `egress_denied`,
   * `egress_failed`, `timeout` or `resource_exhausted`.
   *
   * The promise resolves with the response head; the body streams from the host as it is
   * read, 64 KiB at most per chunk, so the host never holds a large body whole.
   * `res.body` is a ReadableStream of `Uint8Array` chunks with a reading subset of the
   * Streams API: `getReader()` (default readers only) with `read()`, `releaseLock()`,
   * `cancel()`, `closed`; `locked`; `cancel()`; `for await (const chunk of res.body)`.
   * There is no `ReadableStream` global and no pipes or BYOB readers. `text()`, `json()`,
   * `arrayBuffer()` and `bytes()` read the body to its end; `clone()` tees it. A body
   * over `fetch_response_mb` rejects the read that crosses it with `resource_exhausted`
   * (at once, if the upstream declared its length). A body belongs to the call that
   * fetched it: when that call ends, a body not read to its end is cancelled (the
   * connection upstream is closed), and reading it in a later call fails.
   * @example
   * const r = await fc.fetch("https://api.acme-partner.com/quote?sym=ACME");
   * return await r.json();
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  readonly log: FcLog;
}

declare global {
  /** The one platform global. */
  const fc: Fc;
}
