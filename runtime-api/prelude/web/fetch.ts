/**
 * `fetch` (https://fetch.spec.whatwg.org/#fetch-method) over the host's tenant-bound
 * `fetch` op: the host sends the request through the egress proxy with the launching
 * tenant's allowlist and limits (src/bindings/fetch). The guest never names a tenant.
 *
 * Wire format. Request: `request('fetch', { url, method, headers: [[name, value]…],
 * redirect }, bodyBytes?)`. Reply: `{ json: { status, statusText, headers, url,
 * redirected, body? }, bytes }`: `bytes` is the whole body, or — when `body` names a
 * body still arriving — its start; the rest is read with `fetch.read { body }` (reply
 * `{ done }` and up to 64 KiB of bytes) as the mini-app reads, or dropped with
 * `fetch.cancel { body }`. The host cancels a body nobody read when the call ends.
 *
 * Failures reject with the host's coded error (`err.code`). Network-level failures
 * (`egress_denied`, `egress_failed`, `invalid_request`, `payload_too_large`) are
 * `TypeError`s, as browser fetch rejects with a TypeError; `timeout` and
 * `resource_exhausted` are platform limits and stay plain `Error`s.
 */
import { ArrayIsArray, ObjectDefineProperty, TypeErrorCtor } from '../intrinsics.ts';
import { type HostReply, request } from '../host.ts';
import { Request, requestForFetch } from './request.ts';
import { fetchedResponse, type Response } from './response.ts';
import { hostBodySource } from './body.ts';
import { dataDesc, ErrorIsError } from './saved.ts';
import { type Pair, requireArgs } from './webidl.ts';

const NETWORK_CODES = ['egress_denied', 'egress_failed', 'invalid_request', 'payload_too_large'];

function asFetchError(err: unknown): unknown {
  if (!ErrorIsError(err)) return err;
  const e = err as Error & { code?: unknown };
  const code = e.code;
  let network = false;
  for (let i = 0; i < NETWORK_CODES.length; i++) if (NETWORK_CODES[i] === code) network = true;
  if (!network || e.name === 'TypeError') return err;
  const t = new TypeErrorCtor(e.message);
  ObjectDefineProperty(t, 'code', dataDesc(code));
  return t;
}

function invalidReply(): never {
  const e = new TypeErrorCtor('fetch failed: the host returned a malformed response');
  ObjectDefineProperty(e, 'code', dataDesc('egress_failed'));
  throw e;
}

function checkReply(reply: HostReply): { status: number; statusText: string; headers: Pair[]; url: string; redirected: boolean; body: number } {
  const m = reply.json as Record<string, unknown> | undefined;
  if (typeof m !== 'object' || m === null) return invalidReply();
  const { status, statusText, headers, url, redirected, body } = m;
  if (body !== undefined && (typeof body !== 'number' || !(body >= 1) || body % 1 !== 0)) return invalidReply();
  if (typeof status !== 'number' || !(status >= 200 && status <= 599) || status % 1 !== 0) return invalidReply();
  if (typeof statusText !== 'string' || typeof url !== 'string' || typeof redirected !== 'boolean') return invalidReply();
  if (!ArrayIsArray(headers)) return invalidReply();
  for (let i = 0; i < headers.length; i++) {
    const p = headers[i] as unknown;
    if (!ArrayIsArray(p) || p.length !== 2 || typeof p[0] !== 'string' || typeof p[1] !== 'string') return invalidReply();
  }
  return { status, statusText, headers: headers as Pair[], url, redirected, body: body ?? 0 };
}

/**
 * Fetches a resource through the tenant's egress policy. It resolves once the head is
 * in; the body streams from the host as it is read (`res.body`, or `text()`/`json()`/
 * `arrayBuffer()`, which read it to the end), bounded by the tenant's
 * `fetch_response_mb` limit.
 *
 * @example
 * const res = await fetch('https://api.acme-partner.com/items', { headers: { accept: 'application/json' } });
 * if (!res.ok) throw new Error(`upstream ${res.status}`);
 * const items = await res.json();
 */
export async function fetch(input: unknown, init: unknown = undefined): Promise<Response> {
  requireArgs(arguments.length, 1, 'fetch');
  const req = requestForFetch(new Request(input, init));
  let reply: HostReply;
  try {
    const payload = { url: req.url, method: req.method, headers: req.headers, redirect: req.redirect };
    reply = await request('fetch', payload, req.body === null ? undefined : req.body);
  } catch (err) {
    throw asFetchError(err);
  }
  const meta = checkReply(reply);
  return fetchedResponse(meta, reply.bytes, req.method, meta.body === 0 ? null : hostBodySource(meta.body));
}
