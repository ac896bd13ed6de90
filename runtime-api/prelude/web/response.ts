/**
 * `Response` (https://fetch.spec.whatwg.org/#response-class). Its `body` is a
 * ReadableStream; a fetched body still arriving is pulled from the host as it is read
 * (see body.ts). Responses from `fetch` have type "basic", their final `url`,
 * `redirected`, and immutable headers.
 */
import { stringifyChecked } from '../json-value.ts';
import {
  ArrayBufferCtor, JSONStringify, MathFloor, NumberCtor, NumberIsFinite, RangeErrorCtor, stringCharCodeAt,
  stringIndexOf, stringSlice, TypeErrorCtor,
} from '../intrinsics.ts';
import { hostSync } from '../host.ts';
import { type BodyMembers, type BodySource, type BodyState, cloneBody, defineBodyMembers, extractBody } from './body.ts';
import { fillHeaders, headerPairs, Headers, setGuard } from './headers.ts';
import { defineInterface, markPlatformObject, type Pair, toByteString, toDictionary, toUSVString } from './webidl.ts';

type ResponseType = 'basic' | 'default' | 'error';
interface ResponseData {
  status: number; statusText: string; headers: Headers; body: BodyState; type: ResponseType; url: string; redirected: boolean;
}

const INTERNAL = {};
const isNullBodyStatus = (s: number): boolean => s === 101 || s === 103 || s === 204 || s === 205 || s === 304;
const isRedirectStatus = (s: number): boolean => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;

/** Web IDL `unsigned short`: ToNumber, truncate, modulo 2^16. */
function toUint16(v: unknown): number {
  const n = NumberCtor(v);
  if (!NumberIsFinite(n)) return 0;
  const t = n < 0 ? -MathFloor(-n) : MathFloor(n);
  return ((t % 65536) + 65536) % 65536;
}

/** RFC 9112 reason-phrase: HTAB, SP, VCHAR, obs-text. */
function checkStatusText(v: unknown): string {
  const s = toByteString(v);
  for (let i = 0; i < s.length; i++) {
    const c = stringCharCodeAt(s, i);
    if (c !== 0x09 && (c < 0x20 || c === 0x7f)) throw new TypeErrorCtor('Response: invalid statusText');
  }
  return s;
}

const hasHeader = (h: Headers, name: string): boolean => {
  const pairs = headerPairs(h);
  for (let i = 0; i < pairs.length; i++) if (pairs[i]![0] === name) return true;
  return false;
};

/** Internal hook; unreachable from mini-app code. */
export let responseBody: (r: unknown) => BodyState;

/**
 * @example
 * return new Response('not found', { status: 404, headers: { 'content-type': 'text/plain' } });
 */
export class Response {
  #status = 200;
  #statusText = '';
  #headers: Headers;
  #body: BodyState = { bytes: null, used: false };
  #type: ResponseType = 'default';
  #url = '';
  #redirected = false;

  constructor(body: unknown = null, init: unknown = undefined) {
    markPlatformObject(this);
    if (body === INTERNAL) {
      const d = init as ResponseData;
      this.#status = d.status; this.#statusText = d.statusText; this.#headers = d.headers; this.#body = d.body;
      this.#type = d.type; this.#url = d.url; this.#redirected = d.redirected;
      return;
    }
    this.#headers = new Headers();
    const extracted = body === null || body === undefined ? null : extractBody(body);
    Response.#initialize(this, init, extracted);
  }

  /** Fetch's "initialize a response". */
  static #initialize(self: Response, init: unknown, body: { bytes: ArrayBuffer; type: string | null } | null): void {
    const o = toDictionary(init, 'Response');
    const headers = o.headers;
    const status = o.status === undefined ? 200 : toUint16(o.status);
    const statusText = o.statusText === undefined ? '' : checkStatusText(o.statusText);
    if (status < 200 || status > 599) throw new RangeErrorCtor(`Response: status ${status} is not in the range 200 to 599`);
    self.#status = status;
    self.#statusText = statusText;
    if (headers !== undefined) self.#headers = new Headers(headers);
    if (body === null) return;
    if (isNullBodyStatus(status)) throw new TypeErrorCtor(`Response with null body status ${status} cannot have body`);
    self.#body = { bytes: body.bytes, used: false };
    if (body.type !== null && !hasHeader(self.#headers, 'content-type')) fillHeaders(self.#headers, 'content-type', body.type);
  }

  static #of(r: unknown): Response {
    if (typeof r !== 'object' || r === null || !(#status in r)) throw new TypeErrorCtor('Illegal invocation: not a Response');
    return r as Response;
  }

  static {
    responseBody = (r) => Response.#of(r).#body;
  }

  /** A network error: status 0, type "error". */
  static error(): Response {
    const headers = new Headers();
    setGuard(headers, 'immutable');
    return new Response(INTERNAL, { status: 0, statusText: '', headers, body: { bytes: null, used: false }, type: 'error', url: '', redirected: false });
  }

  /** @example return Response.json({ ok: true }, { status: 201 }); */
  static json(data: unknown, init: unknown = undefined): Response {
    // Stricter than WHATWG (which lets JSON.stringify drop or reshape parts): the same rule as fc.storage (json-value.ts).
    const text = stringifyChecked(data, 'data', 'sent');
    if (text === undefined) throw new TypeErrorCtor('Response.json: the data is not JSON serializable');
    const r = new Response();
    Response.#initialize(r, init, { bytes: extractBody(text).bytes, type: 'application/json' });
    return r;
  }

  /** @example return Response.redirect('https://example.com/', 301); */
  static redirect(url: unknown, status: unknown = 302): Response {
    const s = toUSVString(url);
    let href: string;
    try {
      href = (hostSync('url.parse', { input: s }) as { href: string }).href;
    } catch {
      throw new TypeErrorCtor(`Response.redirect: failed to parse URL from ${s}`);
    }
    const code = toUint16(status);
    if (!isRedirectStatus(code)) throw new RangeErrorCtor(`Response.redirect: invalid status code ${code}`);
    const headers = new Headers();
    fillHeaders(headers, 'location', href);
    setGuard(headers, 'immutable');
    return new Response(INTERNAL, { status: code, statusText: '', headers, body: { bytes: null, used: false }, type: 'default', url: '', redirected: false });
  }

  get type(): ResponseType { return this.#type; }
  /** The final URL, without its fragment; "" for responses not from fetch. */
  get url(): string {
    const i = stringIndexOf(this.#url, '#');
    return i < 0 ? this.#url : stringSlice(this.#url, 0, i);
  }
  get redirected(): boolean { return this.#redirected; }
  get status(): number { return this.#status; }
  get ok(): boolean { return this.#status >= 200 && this.#status <= 299; }
  get statusText(): string { return this.#statusText; }
  get headers(): Headers { return this.#headers; }

  clone(): Response {
    const headers = new Headers(this.#headers);
    if (this.#type === 'error' || this.#type === 'basic' || this.#url !== '') setGuard(headers, 'immutable');
    return new Response(INTERNAL, {
      status: this.#status, statusText: this.#statusText, headers, body: cloneBody(this.#body), type: this.#type,
      url: this.#url, redirected: this.#redirected,
    });
  }
}

/**
 * Builds the Response `fetch` resolves with from the host's reply: `bytes` is the body
 * (or its start, when `source` has the rest). Header pairs that are not valid HTTP are
 * dropped rather than failing the whole response.
 */
export function fetchedResponse(
  meta: { status: number; statusText: string; headers: Pair[]; url: string; redirected: boolean },
  bytes: ArrayBuffer | undefined,
  method: string,
  source: BodySource | null = null,
): Response {
  const headers = new Headers();
  for (let i = 0; i < meta.headers.length; i++) {
    try {
      fillHeaders(headers, meta.headers[i]![0], meta.headers[i]![1]);
    } catch {
      // skipped: the host relays what the upstream sent
    }
  }
  setGuard(headers, 'immutable');
  const noBody = isNullBodyStatus(meta.status) || method === 'HEAD';
  if (noBody) source?.cancel();
  const body: BodyState = { bytes: noBody ? null : bytes ?? new ArrayBufferCtor(0), used: false, source: noBody ? null : source };
  return new Response(INTERNAL, {
    status: meta.status, statusText: meta.statusText, headers, body, type: 'basic', url: meta.url, redirected: meta.redirected,
  });
}

export interface Response extends BodyMembers {}
defineBodyMembers(Response, (r) => responseBody(r), true);
defineInterface(Response, 'Response');
