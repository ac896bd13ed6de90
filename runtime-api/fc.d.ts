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
 * `Response`, timers, …), declared at the end of this file so that it type-checks alone
 * (`lib: ["es2023"]`, `types: []`, no `lib: ["dom"]`). **`WebAssembly` is not offered**:
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
 * A shared (acyclic) object is stored once per place it occurs. For the same reason an
 * array or plain object given as a `fetch`/`Request`/`Response` body is a `TypeError`
 * (the web platform would send `"[object Object]"`): send `JSON.stringify(value)`, or
 * `Response.json(value)`.
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
 * - a tenant writes at most 1,000 lines/s and 1 MiB/s (a burst of one second's worth)
 *   across all its instances; lines past that are dropped. Once a line is dropped for
 *   the tenant's rate, the instance drops its lines for the rest of the call and until
 *   the tenant's budget holds a batch again (at most 64 ms).
 * Lines leave the isolate in batches after the code that wrote them yields, and the
 * lines still waiting when a method returns are written before its result goes out.
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

/*
 * The web globals of the isolate (CONTRACT §3), declared here so this file type-checks
 * alone: a mini-app project compiles with `lib: ["es2023"]`, `types: []` and no
 * `skipLibCheck`. Do not add `lib: ["dom"]` (or Node's types) next to this file: they
 * declare the same names differently, and describe globals an isolate does not have
 * (`document`, `Blob`, `process`, …). Only what the prelude offers is declared; members
 * isohost does not support are left out or typed to say so (`blob()`: `Promise<never>`).
 */
declare global {
  /** What a `Headers` can be made from: another `Headers`, `[name, value]` pairs, or a record. */
  type HeadersInit = Headers | [string, string][] | Record<string, string>;
  /** Bodies isohost takes; anything else is converted to a string (Web IDL's USVString). */
  type BodyInit = string | ArrayBuffer | ArrayBufferView | URLSearchParams;
  type RequestInfo = Request | string | URL;
  type ResponseType = 'basic' | 'cors' | 'default' | 'error' | 'opaque' | 'opaqueredirect';
  type RequestRedirect = 'follow' | 'error' | 'manual';

  interface RequestInit {
    /** Default `GET`; `CONNECT`, `TRACE` and `TRACK` are refused. */
    method?: string;
    headers?: HeadersInit;
    /** Not allowed with `GET` or `HEAD`. */
    body?: BodyInit | null;
    /** Default `follow` (at most 10 hops, each checked against the allowlist). */
    redirect?: RequestRedirect;
  }

  interface ResponseInit {
    /** 200..599, default 200. */
    status?: number;
    statusText?: string;
    headers?: HeadersInit;
  }

  /**
   * The body members of `Request` and `Response`. A body is read once (`bodyUsed`);
   * `clone()` first to read it twice. `blob()` and `formData()` are not supported and
   * reject with a `TypeError`.
   */
  interface Body {
    /** A fetched response's body as a stream (`null` for other bodies and for requests). */
    readonly body: ReadableStream | null;
    readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>;
    bytes(): Promise<Uint8Array>;
    text(): Promise<string>;
    json(): Promise<any>;
    blob(): Promise<never>;
    formData(): Promise<never>;
  }

  /** WHATWG Headers: names are lowercased; `get` joins repeated values with ", ". */
  class Headers {
    constructor(init?: HeadersInit);
    append(name: string, value: string): void;
    delete(name: string): void;
    get(name: string): string | null;
    getSetCookie(): string[];
    has(name: string): boolean;
    set(name: string, value: string): void;
    forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    [Symbol.iterator](): IterableIterator<[string, string]>;
  }

  /** WHATWG Request, for `fetch`. Members with no effect in isohost (`cache`, `mode`, …) report the Fetch defaults. */
  class Request {
    constructor(input: RequestInfo, init?: RequestInit);
    readonly method: string;
    readonly url: string;
    readonly headers: Headers;
    readonly redirect: RequestRedirect;
    readonly cache: string;
    readonly credentials: string;
    readonly destination: string;
    readonly duplex: string;
    readonly integrity: string;
    readonly keepalive: boolean;
    readonly mode: string;
    readonly referrer: string;
    readonly referrerPolicy: string;
    clone(): Request;
  }
  interface Request extends Body {}

  /** WHATWG Response: what `fetch` resolves with, and what a method may build. */
  class Response {
    constructor(body?: BodyInit | null, init?: ResponseInit);
    /** A network error: status 0, type `"error"`. */
    static error(): Response;
    /**
     * A JSON response. Stricter than WHATWG: `data` must be a {@link Json} value (the
     * rule of `fc.storage`); anything JSON would reshape throws a `TypeError`.
     * @example return Response.json({ ok: true }, { status: 201 });
     */
    static json(data: unknown, init?: ResponseInit): Response;
    static redirect(url: string | URL, status?: number): Response;
    readonly type: ResponseType;
    readonly url: string;
    readonly redirected: boolean;
    readonly status: number;
    readonly ok: boolean;
    readonly statusText: string;
    readonly headers: Headers;
    clone(): Response;
  }
  interface Response extends Body {}

  /**
   * A fetched body, read chunk by chunk (default readers only; not constructible).
   * @example for await (const chunk of (await fetch(url)).body!) total += chunk.length;
   */
  interface ReadableStream {
    readonly locked: boolean;
    getReader(): ReadableStreamDefaultReader;
    /** Discards the rest of the body. */
    cancel(reason?: unknown): Promise<void>;
    /** Leaving the loop early cancels the rest of the body. */
    values(): AsyncIterableIterator<Uint8Array>;
    [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array>;
  }

  interface ReadableStreamDefaultReader {
    /** Resolves when the body was read to its end or cancelled. */
    readonly closed: Promise<undefined>;
    read(): Promise<{ done: false; value: Uint8Array } | { done: true; value: undefined }>;
    releaseLock(): void;
    cancel(reason?: unknown): Promise<void>;
  }

  /** `fc.fetch` under its web name: every request goes through the egress proxy. */
  function fetch(input: RequestInfo, init?: RequestInit): Promise<Response>;

  /**
   * WHATWG URL (parsed on the host by Node's URL parser, the same as the egress proxy's).
   * isohost limit: a parse or setter takes at most 8192 characters of input (URL and base
   * together); past it the constructor and setters throw a `TypeError` ("longer than").
   */
  class URL {
    constructor(url: string | URL, base?: string | URL);
    static canParse(url: string | URL, base?: string | URL): boolean;
    /** Like the constructor, but `null` instead of throwing. */
    static parse(url: string | URL, base?: string | URL): URL | null;
    href: string;
    readonly origin: string;
    protocol: string;
    username: string;
    password: string;
    host: string;
    hostname: string;
    port: string;
    pathname: string;
    search: string;
    readonly searchParams: URLSearchParams;
    hash: string;
    toString(): string;
    toJSON(): string;
  }

  /** WHATWG URLSearchParams (`application/x-www-form-urlencoded`), parsed and serialised inside the isolate, on the call's CPU budget. */
  class URLSearchParams {
    constructor(init?: string | [string, string][] | Record<string, string> | URLSearchParams);
    readonly size: number;
    append(name: string, value: string): void;
    delete(name: string, value?: string): void;
    get(name: string): string | null;
    getAll(name: string): string[];
    has(name: string, value?: string): boolean;
    set(name: string, value: string): void;
    sort(): void;
    toString(): string;
    forEach(callback: (value: string, key: string, parent: URLSearchParams) => void, thisArg?: unknown): void;
    entries(): IterableIterator<[string, string]>;
    keys(): IterableIterator<string>;
    values(): IterableIterator<string>;
    [Symbol.iterator](): IterableIterator<[string, string]>;
  }

  /** UTF-8 only, as in WHATWG Encoding. */
  class TextEncoder {
    constructor();
    readonly encoding: 'utf-8';
    encode(input?: string): Uint8Array;
    encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
  }

  /** UTF-8 only: any other label throws a `RangeError`. */
  class TextDecoder {
    constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
    readonly encoding: 'utf-8';
    readonly fatal: boolean;
    readonly ignoreBOM: boolean;
    decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string;
  }

  /** Thrown by web APIs (`structuredClone`, `crypto.getRandomValues`, …) with a WHATWG error name. */
  class DOMException extends Error {
    constructor(message?: string, name?: string);
    readonly name: string;
    readonly message: string;
    /** The legacy numeric code of the name (0 for names without one). */
    readonly code: number;
  }

  /** The isolate's `crypto`: random values from the host's CSPRNG. `crypto.subtle` is not offered. */
  interface Crypto {
    /** Fills an integer typed array of at most 65,536 bytes. @example crypto.getRandomValues(new Uint32Array(4)) */
    getRandomValues<T extends Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array>(array: T): T;
    /** A version 4 UUID. */
    randomUUID(): `${string}-${string}-${string}-${string}-${string}`;
  }
  var crypto: Crypto;

  /** Writes to `fc.log` (`log` is `info`); arguments are formatted into the message. */
  interface Console {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    debug(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
  }
  var console: Console;

  /** Base64 of a binary string (every char ≤ U+00FF, else a `DOMException`). */
  function btoa(data: string): string;
  /** A binary string from base64. */
  function atob(data: string): string;
  /** A deep copy (HTML structured clone: `Date`, `Map`, `Set`, typed arrays, cycles); `transfer` is not supported. */
  function structuredClone<T>(value: T, options?: { transfer?: [] }): T;
  /** Runs `handler` after `timeout` ms. Timers belong to the current call: one still pending when the call ends never runs (at most a bounded number pending). */
  function setTimeout<A extends unknown[]>(handler: (...args: A) => void, timeout?: number, ...args: A): number;
  function clearTimeout(id: number | undefined): void;
  function queueMicrotask(callback: () => void): void;
}
