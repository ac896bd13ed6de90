/**
 * `Request` (https://fetch.spec.whatwg.org/#request-class), with a buffered body
 * (see body.ts). Only what isohost's fetch uses has effect: `url`, `method`,
 * `headers`, `body`, `redirect`. `signal` is accepted and ignored (there is no
 * AbortSignal; the wall limit bounds every fetch); `mode`, `credentials`, `cache`,
 * `referrer`… report their defaults.
 */
import { ArrayBufferCtor, ObjectDefineProperty, TypeErrorCtor } from '../intrinsics.ts';
import { codedError, hostSync } from '../host.ts';
import { type BodyMembers, type BodyState, cloneBody, defineBodyMembers, extractBody } from './body.ts';
import { fillHeaders, headerPairs, Headers, isToken } from './headers.ts';
import { dataDesc, stringToUpperCase } from './saved.ts';
import { defineInterface, markPlatformObject, type Pair, requireArgs, toByteString, toDictionary, toUSVString } from './webidl.ts';

type Redirect = 'follow' | 'error' | 'manual';
interface RequestData { url: string; method: string; headers: Headers; body: BodyState; redirect: Redirect }

const INTERNAL = {};
const NORMALIZED = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'];
const FORBIDDEN = ['CONNECT', 'TRACE', 'TRACK'];
const includes = (list: string[], s: string): boolean => {
  for (let i = 0; i < list.length; i++) if (list[i] === s) return true;
  return false;
};

/** Fetch's method validation and normalisation: PATCH stays as written, get becomes GET. */
function toMethod(v: unknown): string {
  const m = toByteString(v);
  if (!isToken(m)) throw new TypeErrorCtor(`Request: '${m}' is not a valid HTTP method`);
  const upper = stringToUpperCase(m);
  if (includes(FORBIDDEN, upper)) throw new TypeErrorCtor(`Request: the '${m}' HTTP method is unsupported`);
  return includes(NORMALIZED, upper) ? upper : m;
}

function toUrl(input: unknown): string {
  const s = toUSVString(input);
  let rec: { href: string; username: string; password: string };
  try {
    rec = hostSync('url.parse', { input: s });
  } catch {
    throw codedError('invalid_request', `Request: failed to parse URL from ${s}`);
  }
  if (rec.username !== '' || rec.password !== '') {
    throw codedError('invalid_request', 'Request: cannot be constructed from a URL that includes credentials');
  }
  return rec.href;
}

const hasHeader = (h: Headers, name: string): boolean => {
  const pairs = headerPairs(h);
  for (let i = 0; i < pairs.length; i++) if (pairs[i]![0] === name) return true;
  return false;
};

/** Internal hooks for fetch.ts; unreachable from mini-app code. */
export let requestBody: (r: unknown) => BodyState;
export let requestForFetch: (r: unknown) => {
  url: string; method: string; headers: Pair[]; redirect: Redirect; body: ArrayBuffer | null;
};

/**
 * @example
 * const req = new Request('https://api.example.com/items', { method: 'post', body: JSON.stringify({ a: 1 }) });
 * req.method // 'POST'
 */
export class Request {
  #url: string;
  #method: string;
  #headers: Headers;
  #body: BodyState;
  #redirect: Redirect;

  constructor(input: unknown, init: unknown = undefined) {
    requireArgs(arguments.length, 1, 'Request');
    markPlatformObject(this);
    if (input === INTERNAL) {
      const d = init as RequestData;
      this.#url = d.url; this.#method = d.method; this.#headers = d.headers; this.#body = d.body; this.#redirect = d.redirect;
      return;
    }
    const src = typeof input === 'object' && input !== null && #url in input ? (input as Request) : null;
    this.#url = src !== null ? src.#url : toUrl(input);
    // Dictionary members are read in lexicographic order, as Web IDL does.
    const o = toDictionary(init, 'Request');
    const initBody = o.body;
    const initHeaders = o.headers;
    const initMethod = o.method;
    const initRedirect = o.redirect;
    this.#method = initMethod !== undefined ? toMethod(initMethod) : src !== null ? src.#method : 'GET';
    let redirect: Redirect = src !== null ? src.#redirect : 'follow';
    if (initRedirect !== undefined) {
      const r = `${initRedirect as string}`;
      if (r !== 'follow' && r !== 'error' && r !== 'manual') throw new TypeErrorCtor(`Request: '${r}' is not a valid redirect mode`);
      redirect = r;
    }
    this.#redirect = redirect;
    this.#headers = new Headers(initHeaders !== undefined ? initHeaders : src !== null ? src.#headers : undefined);
    const hasInitBody = initBody !== undefined && initBody !== null;
    const inputBody = src !== null && src.#body.bytes !== null ? src.#body : null;
    if ((hasInitBody || inputBody !== null) && (this.#method === 'GET' || this.#method === 'HEAD')) {
      throw new TypeErrorCtor('Request with GET/HEAD method cannot have body.');
    }
    this.#body = { bytes: null, used: false };
    if (hasInitBody) {
      const ex = extractBody(initBody);
      this.#body.bytes = ex.bytes;
      if (ex.type !== null && !hasHeader(this.#headers, 'content-type')) fillHeaders(this.#headers, 'content-type', ex.type);
    } else if (inputBody !== null) {
      // The new request takes the input's body; the input becomes used (Fetch: "create a proxy").
      if (inputBody.used) throw new TypeErrorCtor('Request: the input request body has already been read');
      this.#body.bytes = inputBody.bytes;
      inputBody.used = true;
      inputBody.bytes = new ArrayBufferCtor(0);
    }
  }

  static #of(r: unknown): Request {
    if (typeof r !== 'object' || r === null || !(#url in r)) throw new TypeErrorCtor('Illegal invocation: not a Request');
    return r as Request;
  }

  static {
    requestBody = (r) => Request.#of(r).#body;
    requestForFetch = (r) => {
      const self = Request.#of(r);
      const bytes = self.#body.bytes;
      self.#body.used = bytes !== null;
      return { url: self.#url, method: self.#method, headers: headerPairs(self.#headers), redirect: self.#redirect, body: bytes };
    };
  }

  get method(): string { return this.#method; }
  get url(): string { return this.#url; }
  get headers(): Headers { return this.#headers; }
  get redirect(): Redirect { return this.#redirect; }

  clone(): Request {
    const headers = new Headers(this.#headers);
    const body = cloneBody(this.#body);
    return new Request(INTERNAL, { url: this.#url, method: this.#method, headers, body, redirect: this.#redirect });
  }
}

export interface Request extends BodyMembers {
  readonly cache: string; readonly credentials: string; readonly destination: string; readonly duplex: string;
  readonly integrity: string; readonly keepalive: boolean; readonly mode: string; readonly referrer: string;
  readonly referrerPolicy: string;
}
defineBodyMembers(Request, (r) => requestBody(r));
// Members with no effect in isohost report the Fetch defaults.
const DEFAULTS: [string, unknown][] = [
  ['cache', 'default'], ['credentials', 'same-origin'], ['destination', ''], ['duplex', 'half'], ['integrity', ''],
  ['keepalive', false], ['mode', 'cors'], ['referrer', 'about:client'], ['referrerPolicy', ''],
];
for (let i = 0; i < DEFAULTS.length; i++) {
  const key = DEFAULTS[i]![0];
  const value = DEFAULTS[i]![1];
  const get = function (this: unknown) { requestBody(this); return value; };
  ObjectDefineProperty(get, 'name', dataDesc(`get ${key}`, false, false));
  ObjectDefineProperty(Request.prototype, key, { __proto__: null, get, enumerable: true, configurable: true } as PropertyDescriptor);
}
defineInterface(Request, 'Request');
