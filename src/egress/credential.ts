/**
 * Short-lived per-call credentials the host attaches to every egress request
 * (`Proxy-Authorization: Bearer <credential>`). The proxy derives the tenant from the
 * credential alone — never from anything the guest can set (THREATS §D 34).
 *
 * Format: `v1.<base64url(JSON [tenant, app, instance, exp])>.<base64url(HMAC-SHA256)>`,
 * the MAC taken over a domain-separated string so the key cannot be confused with
 * another use. Compared in constant time (`crypto.timingSafeEqual`); `exp` is epoch ms.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export interface EgressClaims {
  readonly tenant: string;
  readonly app: string;
  readonly instance: string;
  /** Epoch milliseconds after which the proxy refuses the credential. */
  readonly exp: number;
}

const DOMAIN = 'isohost-egress-v1.';
const TOKEN = /^v1\.([A-Za-z0-9_-]{1,2000})\.([A-Za-z0-9_-]{43})$/;
const Payload = z.tuple([z.string().min(1).max(200), z.string().max(200), z.string().max(200), z.number().int().positive()]);

/** The key must be at least 32 random bytes (`loadOrCreateEgressKey`). */
export const MIN_KEY_BYTES = 32;

function mac(key: Uint8Array, payload: string): Buffer {
  if (key.byteLength < MIN_KEY_BYTES) throw new RangeError(`egress credential key must be at least ${MIN_KEY_BYTES} bytes`);
  return createHmac('sha256', key).update(DOMAIN + payload).digest();
}

/**
 * Mints a credential for one call.
 *
 * @example
 * const cred = mintEgressCredential(key, { tenant: 'bu-a', app: 'shop', instance: 'i1', exp: Date.now() + 5000 });
 * // → 'v1.WyJidS1hIiwic2hvcCIsImkxIiwxNzA…'.'…'
 */
export function mintEgressCredential(key: Uint8Array, claims: EgressClaims): string {
  const payload = Buffer.from(JSON.stringify([claims.tenant, claims.app, claims.instance, Math.floor(claims.exp)])).toString('base64url');
  return `v1.${payload}.${mac(key, payload).toString('base64url')}`;
}

/**
 * Verifies a credential: shape, MAC (constant time), then expiry. Returns the claims,
 * or null for anything wrong — the caller answers 407 without saying which check failed.
 */
export function verifyEgressCredential(key: Uint8Array, token: unknown, now = Date.now()): EgressClaims | null {
  if (typeof token !== 'string') return null;
  const m = TOKEN.exec(token);
  if (!m) return null;
  const expected = mac(key, m[1]);
  const given = Buffer.from(m[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const claims = Payload.safeParse(parsed);
  if (!claims.success) return null;
  const [tenant, app, instance, exp] = claims.data;
  if (exp <= now) return null;
  return { tenant, app, instance, exp };
}

/** Extracts the credential from a `Proxy-Authorization` header value (`Bearer <token>`). */
export function bearerFrom(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null; // repeated header: ambiguous, refuse
  const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  return m ? m[1] : null;
}
