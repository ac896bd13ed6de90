/**
 * The host half of `fc.fetch` (CONTRACT §3). Every request goes through the egress
 * proxy with a credential minted for this call; the tenant is the one this binding was
 * built for, never anything the guest sends (THREATS §D 34).
 *
 * - One proxy client per instance (src/egress/instance-client.ts), the same in `serve`,
 *   `run` and tests: reused across the instance's calls so connections to the proxy stay
 *   alive (a new agent per call cost ~3.5 ms per fetch in `npm run bench`); its credential
 *   names the tenant, app and instance (so every audit line does, CONNECT included) and
 *   never reaches the guest. `http:` goes to the proxy in absolute-form, `https:` through
 *   CONNECT — see src/egress/client.ts.
 * - Redirects are followed here, not by the proxy: each hop is a new request through
 *   the proxy and is re-checked there (THREATS §D 32). Max 10, as in the Fetch standard.
 * - Limits: `fetch_per_call` fetches per call, `fetch_response_mb` per response body
 *   (streamed and counted, aborted when exceeded), and the call's deadline.
 * - Bodies stream to the guest (body-stream.ts): the `fetch` reply carries the head and
 *   what has already arrived; if more is coming it also names a body the guest reads
 *   with `fetch.read` (a chunk of at most 64 KiB per reply) or stops with `fetch.cancel`.
 *   A small body arrives whole with the head, in one round trip. Bodies belong to their
 *   call: when it ends, the ones still open are cancelled.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { TenantLimits } from '../../config/schema.ts';
import { IsohostError } from '../../errors.ts';
import { type EgressClient, proxyRefusal } from '../../egress/client.ts';
import { isStrippedRequestHeader } from '../../egress/headers.ts';
import { InstanceEgressClient } from '../../egress/instance-client.ts';
import type { Binding, CallScope, Reply } from '../types.ts';
import { ResponseBodyStream } from './body-stream.ts';

export interface FetchBindingOptions {
  readonly proxyUrl: string;
  readonly credentialKey: Uint8Array;
  readonly tenantId: string;
  readonly limits: Pick<TenantLimits, 'fetch_per_call' | 'fetch_response_mb'>;
  readonly logger: Logger;
}

// RFC 9110 §5.6.2 token; §5.5 field value: visible ASCII, SP, HTAB, obs-text (no CR, LF, NUL).
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const FetchPayload = z.object({
  url: z.string().min(1).max(16_384),
  method: z.string().max(64).regex(TOKEN, 'method must be an HTTP token').default('GET'),
  headers: z.array(z.tuple([z.string().max(256).regex(TOKEN, 'header name must be a token'), z.string().max(65_536).regex(FIELD_VALUE, 'header value must be visible ASCII or Latin-1 (no CR, LF, NUL)')])).max(256).default([]),
  redirect: z.enum(['follow', 'manual', 'error']).default('follow'),
});

// Fetch standard: these are normalised to upper case; CONNECT/TRACE/TRACK are forbidden.
const NORMALISED = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
// Dropped when a redirect turns the request into a body-less GET (Fetch standard §4.4).
const BODY_HEADERS = ['content-type', 'content-encoding', 'content-language', 'content-location', 'content-length'];

interface CallState {
  count: number;
  /** Bodies the guest may still read, by the id its `fetch` reply gave. */
  bodies: Map<number, ResponseBodyStream>;
  nextBody: number;
}

const BodyRef = z.strictObject({ body: z.number().int().min(1) });

function invalid(message: string): IsohostError {
  return new IsohostError('invalid_request', `fc.fetch: ${message}`);
}

function parseTarget(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('invalid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`scheme ${url.protocol} is not supported (http: and https: only)`);
  if (url.username !== '' || url.password !== '') throw invalid('URLs with credentials are not allowed');
  url.hash = '';
  return url;
}

type HeaderMap = Record<string, string | string[]>;

function guestHeaders(pairs: readonly [string, string][]): HeaderMap {
  const out: HeaderMap = {};
  for (const [rawName, value] of pairs) {
    const name = rawName.toLowerCase();
    // Host, Proxy-*, hop-by-hop, X-Forwarded-* (RFC 9110 §7.6.1); Content-Length is undici's to set.
    if (isStrippedRequestHeader(name) || name === 'content-length') continue;
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** The chunk as an ArrayBuffer of its own (a Buffer may be a view into a larger pooled one). */
function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

function replyHeaders(headers: Record<string, string | string[] | undefined>): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else if (value !== undefined) out.push([name, value]);
  }
  return out;
}

/**
 * Builds the fetch binding for one tenant's instance.
 *
 * @example
 * const binding = fetchBinding({ proxyUrl: proxy.url, credentialKey, tenantId: 'bu-a',
 *   limits: { fetch_per_call: 50, fetch_response_mb: 10 }, logger });
 * const reply = await binding.handle('fetch', { url: 'https://api.example.com/' }, undefined, scope);
 */
export function fetchBinding(options: FetchBindingOptions): Binding {
  const calls = new WeakMap<AbortSignal, CallState>();
  const egress = new InstanceEgressClient(options.proxyUrl, options.credentialKey, options.tenantId);
  const maxBytes = options.limits.fetch_response_mb * 1024 * 1024;

  function stateFor(scope: CallScope): CallState {
    let state = calls.get(scope.signal);
    if (state === undefined) {
      state = { count: 0, bodies: new Map(), nextBody: 1 };
      calls.set(scope.signal, state);
      const s = state;
      scope.signal.addEventListener('abort', () => {
        // Bodies never read to their end are cancelled with their call.
        for (const body of s.bodies.values()) body.cancel();
        s.bodies.clear();
      }, { once: true });
    }
    return state;
  }


  function failure(err: unknown, url: URL, client: EgressClient, signal: AbortSignal, scope: CallScope): IsohostError {
    if (err instanceof IsohostError) return err;
    if (signal.aborted) return new IsohostError('timeout', scope.signal.aborted ? `fc.fetch to ${url.host} aborted: the call ended` : `fc.fetch to ${url.host} aborted: the call deadline was reached`);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const refusal = client.takeRefusal(`${url.hostname}:${port}`);
    const message = err instanceof Error ? err.message : '';
    if (refusal && refusal.code !== 'unauthenticated') return new IsohostError(refusal.code, refusal.message);
    if (refusal || /Proxy Authentication Required|\(407\)/.test(message)) return new IsohostError('egress_failed', 'the egress proxy refused the call credential');
    const code = (err as { code?: unknown } | null)?.code;
    return new IsohostError('egress_failed', `fc.fetch to ${url.host} failed (${typeof code === 'string' ? code : 'network error'})`);
  }

  function tooBig(url: URL): IsohostError {
    return new IsohostError('resource_exhausted', `fc.fetch: the response from ${url.host} is over the ${options.limits.fetch_response_mb} MB fetch_response_mb limit`);
  }

  /** A body broke off before its end: the call ended or its deadline passed (timeout), or the upstream reset (egress_failed). */
  function broken(url: URL, signal: AbortSignal, scope: CallScope): IsohostError {
    if (signal.aborted) return new IsohostError('timeout', scope.signal.aborted ? `fc.fetch: the body from ${url.host} was cancelled: the call ended` : `fc.fetch: reading the body from ${url.host} reached the call deadline`);
    return new IsohostError('egress_failed', `fc.fetch: the response from ${url.host} broke off before its end`);
  }

  async function doFetch(payload: unknown, bytes: ArrayBuffer | undefined, scope: CallScope): Promise<Reply> {
    const parsed = FetchPayload.safeParse(payload);
    if (!parsed.success) throw invalid(parsed.error.issues.map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`).join('; '));
    const input = parsed.data;
    let method = NORMALISED.has(input.method.toUpperCase()) ? input.method.toUpperCase() : input.method;
    if (FORBIDDEN_METHODS.has(method.toUpperCase())) throw invalid(`method ${method} is not allowed`);
    let url = parseTarget(input.url);
    let body: Buffer | null = bytes && bytes.byteLength > 0 ? Buffer.from(bytes) : null;
    if (body && (method === 'GET' || method === 'HEAD')) throw invalid(`a ${method} request cannot have a body`);
    let headers = guestHeaders(input.headers);

    if (scope.signal.aborted || Date.now() >= scope.deadline) throw new IsohostError('timeout', 'fc.fetch: the call deadline was reached');
    const state = stateFor(scope);
    if (++state.count > options.limits.fetch_per_call) throw new IsohostError('resource_exhausted', `fc.fetch: more than ${options.limits.fetch_per_call} fetches in one call (fetch_per_call)`);
    const client = egress.for(scope);
    // One controller per fetch, aborted by the call's end or its deadline (cheaper than
    // AbortSignal.any + AbortSignal.timeout on this per-fetch path).
    const controller = new AbortController();
    const signal = controller.signal;
    const onEnd = () => controller.abort(scope.signal.reason);
    scope.signal.addEventListener('abort', onEnd, { once: true });
    const deadlineTimer = setTimeout(() => controller.abort(new Error('deadline')), Math.max(1, scope.deadline - Date.now()));
    // Released when the reply is the whole response, else when its body ends (read, failed, cancelled).
    let keepOpen = false;
    let bodyId = 0;
    const release = () => {
      clearTimeout(deadlineTimer);
      scope.signal.removeEventListener('abort', onEnd);
      if (bodyId !== 0) state.bodies.delete(bodyId);
    };

    try {
      for (let hop = 0; ; hop++) {
        try {
          const res = await client.agent.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method, headers, body, signal });
          const refusal = proxyRefusal(res.statusCode, res.headers);
          if (refusal) {
            await res.body.dump().catch(() => {});
            throw refusal.code === 'unauthenticated' ? new IsohostError('egress_failed', refusal.message) : new IsohostError(refusal.code, refusal.message);
          }
          const location = res.headers.location;
          if (REDIRECTS.has(res.statusCode) && typeof location === 'string' && input.redirect !== 'manual') {
            await res.body.dump().catch(() => {});
            if (input.redirect === 'error') throw new IsohostError('egress_failed', `fc.fetch: ${url.host} redirected and redirect is "error"`);
            if (hop + 1 > MAX_REDIRECTS) throw new IsohostError('egress_failed', `fc.fetch: more than ${MAX_REDIRECTS} redirects`);
            let next: URL;
            try {
              next = new URL(location, url);
            } catch {
              throw new IsohostError('egress_failed', `fc.fetch: ${url.host} sent an invalid redirect location`);
            }
            if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new IsohostError('egress_denied', `fc.fetch: redirect from ${url.host} to a ${next.protocol} URL is not allowed`);
            if (next.username !== '' || next.password !== '') throw new IsohostError('egress_failed', 'fc.fetch: redirect location carries credentials');
            next.hash = '';
            const s = res.statusCode;
            if (((s === 301 || s === 302) && method === 'POST') || (s === 303 && method !== 'GET' && method !== 'HEAD')) {
              method = 'GET';
              body = null;
              headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !BODY_HEADERS.includes(k)));
            }
            // Credentials do not follow a cross-origin redirect (Fetch standard; undici does the same).
            if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization' && k !== 'cookie'));
            url = next;
            continue;
          }
          const head = { status: res.statusCode, statusText: res.statusText ?? '', headers: replyHeaders(res.headers), url: url.href, redirected: hop > 0 };
          options.logger.debug({ evt: 'fetch', tenant: options.tenantId, app: scope.appId, host: url.host, status: res.statusCode }, 'fc.fetch');
          if (method === 'HEAD') {
            await res.body.dump().catch(() => {});
            return { json: JSON.stringify(head), bytes: new ArrayBuffer(0) };
          }
          if (Number(res.headers['content-length']) > maxBytes) {
            res.body.destroy();
            throw tooBig(url);
          }
          const target = url;
          const ended = () => {
            release();
            // What the host held of this body at most: a few chunks, whatever its size (test/egress/fetch-stream.test.ts).
            options.logger.debug({ evt: 'fetch.body', tenant: options.tenantId, app: scope.appId, host: target.host, bytes: stream.bytesRead, peakBuffered: stream.peakBuffered }, 'fc.fetch body ended');
          };
          const stream: ResponseBodyStream = new ResponseBodyStream(res.body, { maxBytes, tooBig: () => tooBig(target), broken: () => broken(target, signal, scope), onEnd: ended });
          const first = stream.takeBuffered();
          if (first.done) return { json: JSON.stringify(head), bytes: arrayBufferOf(first.bytes) };
          // More is coming: the guest reads it with fetch.read; the deadline and the call's end still apply.
          keepOpen = true;
          const id = state.nextBody++;
          state.bodies.set(id, stream);
          bodyId = id;
          return { json: JSON.stringify({ ...head, body: id }), bytes: arrayBufferOf(first.bytes) };
        } catch (err) {
          const coded = failure(err, url, client, signal, scope);
          options.logger.debug({ evt: 'fetch', tenant: options.tenantId, app: scope.appId, host: url.host, code: coded.code }, 'fc.fetch failed');
          throw coded;
        }
      }
    } finally {
      if (!keepOpen) release();
    }
  }

  /** `fetch.read`: the next chunk of a body of this call; `fetch.cancel`: stop reading it. */
  async function bodyOp(op: string, payload: unknown, scope: CallScope): Promise<Reply> {
    const ref = BodyRef.safeParse(payload);
    if (!ref.success) throw invalid('bad body reference');
    const state = calls.get(scope.signal);
    const body = state?.bodies.get(ref.data.body);
    if (state === undefined || body === undefined) {
      if (op === 'fetch.cancel') return { json: '' };
      throw invalid('no such response body in this call (bodies end with the call that fetched them)');
    }
    if (op === 'fetch.cancel') {
      state.bodies.delete(ref.data.body);
      body.cancel();
      return { json: '' };
    }
    try {
      const chunk = await body.read();
      if (chunk.done) state.bodies.delete(ref.data.body);
      return { json: chunk.done ? '{"done":true}' : '{"done":false}', bytes: arrayBufferOf(chunk.bytes) };
    } catch (err) {
      state.bodies.delete(ref.data.body);
      throw err;
    }
  }

  return {
    ops: ['fetch', 'fetch.read', 'fetch.cancel'],
    async handle(op, payload, bytes, scope) {
      if (op === 'fetch') return doFetch(payload, bytes, scope);
      if (op === 'fetch.read' || op === 'fetch.cancel') return bodyOp(op, payload, scope);
      throw invalid(`unknown op ${op}`);
    },
  };
}
