/**
 * Synchronous, tenant-free platform utilities the guest prelude calls through
 * `hostSync()` (runtime-api/prelude/host.ts). Plain Node: this file never touches
 * isolated-vm; the bridge hands it the op name and the payload JSON text and copies
 * the answer back.
 *
 * Why URL parsing lives here: a spec-complete WHATWG URL parser with IDNA tables
 * costs ~3 MB RSS per isolate (shared/FINDINGS.md "The cost of URL inside every
 * isolate"); Node's own parser (ada) is exactly as conformant and costs nothing per
 * isolate. The guest `URL` class keeps only the parsed record.
 *
 * Contract: `handleSyncOp` never throws. It returns `{"ok":…}` JSON text, an
 * ArrayBuffer for byte results (`random.bytes`), or
 * `{"error":{"code":"invalid_request","message":…}}`.
 *
 * Every op runs on the host's event loop while the guest waits, so each is bounded in
 * input size so that no input holds the loop for more than ~1 ms (THREATS F43). Node's
 * URL parser is not linear on every input: percent-encoding a path of `é` cost 0.3 ms at
 * 8 Ki characters and 7–17 ms at 32 Ki, a userinfo of `@`s 0.14 ms at 8 Ki and up to
 * 4 ms at 32 Ki, on the 2-core bench machine under load (`node bench/sync-ops.ts`
 * re-measures). So a URL op takes at most MAX_URL_CHARS characters of input in all —
 * the common HTTP server limit for a request line. The form-urlencoded parser and
 * serializer (Node's is quadratic in the number of pairs) moved into the isolate:
 * runtime-api/prelude/web/urlencoded.ts.
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { URL as NodeURL } from 'node:url';

/** The most input characters (UTF-16 code units) of one URL op, all strings together. */
export const MAX_URL_CHARS = 8 * 1024;
/** Longest payload JSON text: the URL strings with room for JSON escapes (`\uXXXX` is 6 characters). */
export const MAX_PAYLOAD = 6 * MAX_URL_CHARS + 1024;
/** Largest `random.bytes` request: the Web Crypto quota for getRandomValues. */
export const MAX_RANDOM_BYTES = 65536;

const URL_ATTRS = ['href', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'] as const;
type UrlAttr = (typeof URL_ATTRS)[number];

/** What the guest `URL` caches: every getter of the WHATWG URL interface but `searchParams`. */
export interface UrlRecord {
  href: string; origin: string; protocol: string; username: string; password: string;
  host: string; hostname: string; port: string; pathname: string; search: string; hash: string;
}

class BadRequest extends Error {}

function fail(message: string): never {
  throw new BadRequest(message);
}

function record(u: NodeURL): UrlRecord {
  return {
    href: u.href, origin: u.origin, protocol: u.protocol, username: u.username, password: u.password,
    host: u.host, hostname: u.hostname, port: u.port, pathname: u.pathname, search: u.search, hash: u.hash,
  };
}

function str(payload: Record<string, unknown>, key: string, op: string): string {
  const v = payload[key];
  if (typeof v !== 'string') fail(`${op}: ${key} must be a string`);
  return v;
}

/** Refuses URL input past MAX_URL_CHARS, before the parser sees it. */
function bounded(op: string, ...parts: (string | undefined)[]): void {
  let n = 0;
  for (const p of parts) n += p?.length ?? 0;
  if (n > MAX_URL_CHARS) fail(`${op}: the URL is longer than ${MAX_URL_CHARS} characters (isohost's limit)`);
}

function parseUrl(input: string, base: string | undefined): NodeURL {
  try {
    return new NodeURL(input, base);
  } catch {
    return fail('Invalid URL');
  }
}

function urlParse(p: Record<string, unknown>): UrlRecord {
  const input = str(p, 'input', 'url.parse');
  const base = p.base === undefined ? undefined : str(p, 'base', 'url.parse');
  bounded('url.parse', input, base);
  return record(parseUrl(input, base));
}

function urlSet(p: Record<string, unknown>): UrlRecord {
  const href = str(p, 'href', 'url.set');
  const value = str(p, 'value', 'url.set');
  const attr = p.attr;
  if (typeof attr !== 'string' || !(URL_ATTRS as readonly string[]).includes(attr)) fail('url.set: unknown attr');
  bounded('url.set', href, value);
  const u = parseUrl(href, undefined);
  if (attr === 'href') return record(parseUrl(value, undefined)); // the href setter throws on failure
  u[attr as Exclude<UrlAttr, 'href'>] = value; // the other setters ignore bad input, as the spec says
  return record(u);
}

function randomBytes(p: Record<string, unknown>): ArrayBuffer {
  const n = p.n;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) {
    fail(`random.bytes: n must be an integer in 0..${MAX_RANDOM_BYTES}`);
  }
  const out = new ArrayBuffer(n);
  randomFillSync(new Uint8Array(out));
  return out;
}

const OPS: Record<string, (p: Record<string, unknown>) => unknown> = {
  'url.parse': urlParse,
  'url.set': urlSet,
  'random.bytes': randomBytes,
  'random.uuid': () => randomUUID(),
};

function errorJson(message: string): string {
  return JSON.stringify({ error: { code: 'invalid_request', message } });
}

/**
 * Runs one synchronous platform op for the guest.
 *
 * @example
 * handleSyncOp('url.parse', '{"input":"/a?b","base":"https://x.test"}')
 * // '{"ok":{"href":"https://x.test/a?b",…}}'
 */
export function handleSyncOp(op: string, payloadJson: string): string | ArrayBuffer {
  try {
    if (typeof op !== 'string' || !Object.hasOwn(OPS, op)) return errorJson('unknown platform op');
    if (typeof payloadJson !== 'string') return errorJson(`${op}: payload must be JSON text`);
    if (payloadJson.length > MAX_PAYLOAD) return errorJson(`${op}: payload is larger than ${MAX_PAYLOAD} characters`);
    let payload: unknown;
    try {
      payload = payloadJson === '' ? {} : JSON.parse(payloadJson);
    } catch {
      return errorJson(`${op}: payload is not valid JSON`);
    }
    if (payload === undefined || payload === null) payload = {};
    if (typeof payload !== 'object' || Array.isArray(payload)) return errorJson(`${op}: payload must be an object`);
    const result = OPS[op]!(payload as Record<string, unknown>);
    if (result instanceof ArrayBuffer) return result;
    return JSON.stringify({ ok: result });
  } catch (err) {
    // Only our own messages go back; anything unexpected is reported without detail.
    return errorJson(err instanceof BadRequest ? err.message : `${op}: the request could not be handled`);
  }
}
