// @ts-check
/// <reference path="../../runtime-api/fc.d.ts" />
// Calls a partner API that the tenant's network allowlist names. Every request goes
// through isohost's egress proxy; a host the allowlist does not name is refused with
// `egress_denied` before any connection (or DNS lookup) is made.

const DEFAULT_BASE = 'https://api.acme-partner.com';

/** `{ symbol, base? }` → `{ symbol, quote, fetchedAt }`; the quote is cached for 60 s. */
export async function getQuote(args) {
  const symbol = args?.symbol;
  if (typeof symbol !== 'string' || !/^[A-Z]{1,8}$/.test(symbol)) throw new TypeError('symbol must be 1..8 capital letters');
  const cached = await fc.storage.get(`quote:${symbol}`);
  if (cached && Date.now() - Date.parse(cached.fetchedAt) < 60_000) return { ...cached, cached: true };
  const url = new URL('/quote', args?.base ?? DEFAULT_BASE);
  url.searchParams.set('symbol', symbol);
  const res = await fc.fetch(url, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`the quote service answered ${res.status}`);
  const result = { symbol, quote: await res.json(), fetchedAt: new Date().toISOString() };
  await fc.storage.set(`quote:${symbol}`, result);
  return result;
}
