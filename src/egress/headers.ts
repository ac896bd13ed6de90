/**
 * Which header fields cross the egress proxy. Shared by the proxy (both directions)
 * and the fetch binding (guest-set request headers), so the rule lives in one place.
 *
 * - Hop-by-hop fields (RFC 9110 §7.6.1; RFC 9112 §9.6 for `keep-alive`,
 *   `proxy-connection` is the legacy non-standard one undici still sends) and every
 *   field named in `Connection` are never forwarded.
 * - `Proxy-*` carries the per-call credential: the upstream must never see it.
 * - `Host` is set by the proxy from the checked target (RFC 9112 §3.2.2: a proxy
 *   replaces Host with the absolute-form target's authority).
 * - `Forwarded`/`X-Forwarded-*`/`X-Real-IP`: a guest must not claim an origin IP.
 * - `X-Isohost-*` is the proxy's own namespace (denial reasons for the binding).
 * - `Expect`: the proxy does not do 100-continue with upstreams.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
  'forwarded',
  'x-real-ip',
  'http2-settings',
]);

/** Header the proxy sets on its own 403/407/502 answers; stripped from upstream responses. */
export const EGRESS_ERROR_HEADER = 'x-isohost-egress-error';
export const EGRESS_MESSAGE_HEADER = 'x-isohost-egress-message';

/** True for a request header name that must not be forwarded upstream. */
export function isStrippedRequestHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || lower.startsWith('x-forwarded-') || lower.startsWith('x-isohost-');
}

function connectionTokens(raw: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() !== 'connection') continue;
    for (const token of raw[i + 1].split(',')) names.add(token.trim().toLowerCase());
  }
  return names;
}

/** Filters Node `rawHeaders` (`[name, value, …]`) of a proxied request. */
export function forwardableRequestHeaders(raw: readonly string[]): [string, string][] {
  const listed = connectionTokens(raw);
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!isStrippedRequestHeader(raw[i]) && !listed.has(raw[i].toLowerCase())) out.push([raw[i], raw[i + 1]]);
  }
  return out;
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Filters Node `rawHeaders` of an upstream response: hop-by-hop, `Proxy-*`, `X-Isohost-*`. */
export function forwardableResponseHeaders(raw: readonly string[]): [string, string][] {
  const listed = connectionTokens(raw);
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (RESPONSE_HOP_BY_HOP.has(lower) || listed.has(lower) || lower.startsWith('proxy-') || lower.startsWith('x-isohost-')) continue;
    out.push([raw[i], raw[i + 1]]);
  }
  return out;
}
