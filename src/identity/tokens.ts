/**
 * Minting access tokens for `iam-internal` realms (CONTRACT §5 `isohost token`).
 *
 * Header `{ alg: "EdDSA", kid, typ: "isohost+jwt" }`. The `typ` is explicit typing per
 * RFC 8725 §3.11: the verifier of an internal realm accepts only this media type
 * (`application/isohost+jwt`), so an ID token or any other JWT signed by a key the realm
 * trusts cannot be replayed as an isohost API token.
 *
 * Claims (RFC 7519 §4.1): `iss` = the realm issuer, `aud` = the realm audience, `sub`,
 * `scope` (space-separated, as RFC 8693 §4.2 / RFC 9068 §2.2.3), `iat`, `exp`, `jti`.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { IdentityConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import type { RealmKeyStore } from './realm-keys.ts';

/** The pinned `typ` of isohost-minted tokens (RFC 8725 §3.11 explicit typing). */
export const INTERNAL_TYP = 'isohost+jwt';
/** `exp - iat` when no ttl is given: 1 hour. */
export const DEFAULT_TTL_SECONDS = 3600;
/** The longest ttl accepted: 24 hours. */
export const MAX_TTL_SECONDS = 86_400;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Parses a ttl: `90s`, `30m`, `1h`, `2d`, or a plain number of seconds. Range checks are the
 * caller's (mintToken rejects more than 24h).
 *
 * @example
 * parseTtl('30m'); // 1800
 * parseTtl('2d');  // 172800
 */
export function parseTtl(ttl: string | number): number {
  if (typeof ttl === 'number') {
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new IsohostError('invalid_request', 'ttl must be a positive whole number of seconds');
    return ttl;
  }
  const m = /^(\d{1,9})([smhd]?)$/.exec(ttl.trim());
  if (m === null) throw new IsohostError('invalid_request', 'ttl must look like 90s, 30m, 1h or 2d');
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] || 's'];
  if (seconds <= 0) throw new IsohostError('invalid_request', 'ttl must be positive');
  return seconds;
}

/** `iss` of a realm: the configured issuer, else `isohost:realm:<realm>`. */
export function realmIssuer(identity: IdentityConfig): string {
  return identity.issuer ?? `isohost:realm:${identity.realm}`;
}

/** `aud` of a realm: the configured audience, else the tenant id. */
export function realmAudience(identity: IdentityConfig, tenantId: string): string {
  return identity.audience ?? tenantId;
}

/** What mintToken needs to know about the realm it signs for. */
export interface MintRealm {
  realm: string;
  issuer: string;
  audience: string;
  keys: RealmKeyStore;
}

export interface MintOptions {
  /** The subject (user id), 1..255 characters without control characters. */
  sub: string;
  /** Scopes, as a space-separated string or a list (`apps:call apps:deploy`). */
  scope?: string | readonly string[];
  /** Lifetime (default 1h, at most 24h): see parseTtl. */
  ttl?: string | number;
  /** Clock in ms since the epoch (tests); default Date.now. */
  now?: () => number;
}

/** Normalises and checks scopes; returns the space-separated claim value. */
export function scopeClaim(scope: string | readonly string[] | undefined): string {
  const list = typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [...(scope ?? [])];
  for (const s of list) {
    if (!SCOPE_TOKEN.test(s) || s.length > 128) throw new IsohostError('invalid_request', 'scope entries must be RFC 6749 scope tokens of at most 128 characters');
  }
  if (list.length > 64) throw new IsohostError('invalid_request', 'at most 64 scopes');
  return [...new Set(list)].join(' ');
}

/**
 * Signs an access token with the realm's current signing key.
 *
 * @example
 * const jwt = await mintToken({ realm: 'bu-a', issuer: 'isohost:realm:bu-a', audience: 'business-unit-a', keys },
 *   { sub: 'alice', scope: 'apps:call', ttl: '1h' });
 */
export async function mintToken(realm: MintRealm, opts: MintOptions): Promise<string> {
  if (typeof opts.sub !== 'string' || opts.sub.length < 1 || opts.sub.length > 255 || /\p{Cc}/u.test(opts.sub)) {
    throw new IsohostError('invalid_request', 'sub must be 1..255 characters without control characters');
  }
  const ttl = parseTtl(opts.ttl ?? DEFAULT_TTL_SECONDS);
  if (ttl > MAX_TTL_SECONDS) throw new IsohostError('invalid_request', `ttl ${ttl}s is longer than the maximum of 24h`);
  const scope = scopeClaim(opts.scope);
  const iat = Math.floor((opts.now ?? Date.now)() / 1000);
  const { kid, key } = await realm.keys.signingKey(realm.realm);
  return new SignJWT({ scope })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: INTERNAL_TYP })
    .setIssuer(realm.issuer)
    .setAudience(realm.audience)
    .setSubject(opts.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl)
    .setJti(randomUUID())
    .sign(key);
}
