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
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { URL as NodeURL, URLSearchParams as NodeURLSearchParams } from 'node:url';

/** Longest string accepted in any payload field (UTF-16 code units). */
export const MAX_STRING = 1 << 20;
/** Longest payload JSON text (a serialised search-params list may hold many strings). */
export const MAX_PAYLOAD = 4 * MAX_STRING;
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
  if (v.length > MAX_STRING) fail(`${op}: ${key} is longer than ${MAX_STRING} characters`);
  return v;
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
  return record(parseUrl(input, base));
}

function urlSet(p: Record<string, unknown>): UrlRecord {
  const href = str(p, 'href', 'url.set');
  const value = str(p, 'value', 'url.set');
  const attr = p.attr;
  if (typeof attr !== 'string' || !(URL_ATTRS as readonly string[]).includes(attr)) fail('url.set: unknown attr');
  const u = parseUrl(href, undefined);
  if (attr === 'href') return record(parseUrl(value, undefined)); // the href setter throws on failure
  u[attr as Exclude<UrlAttr, 'href'>] = value; // the other setters ignore bad input, as the spec says
  return record(u);
}

function uspParse(p: Record<string, unknown>): [string, string][] {
  return Array.from(new NodeURLSearchParams(str(p, 'init', 'usp.parse')));
}

function uspSerialize(p: Record<string, unknown>): string {
  const pairs = p.pairs;
  if (!Array.isArray(pairs)) fail('usp.serialize: pairs must be an array');
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      fail('usp.serialize: each pair must be [string, string]');
    }
  }
  return new NodeURLSearchParams(pairs as [string, string][]).toString();
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
  'usp.parse': uspParse,
  'usp.serialize': uspSerialize,
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
