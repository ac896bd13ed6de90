/**
 * One verifier per tenant: a token verifies only against the realm of the tenant named by the
 * route, never one picked from the token (THREATS §C 19). Every check is pinned per realm:
 *
 * - algorithms: internal `EdDSA` only; external the configured list. `none` and HS* never
 *   pass, so "HS256 keyed with the public key" cannot (RFC 8725 §3.1–3.2).
 * - `iss` and `aud` pinned (RFC 8725 §3.8–3.9); `exp`, `iss`, `aud`, `sub` required
 *   (jose checks `exp` only when present, RFC 7519 §4.1.4); 60 s clock tolerance on
 *   `exp`/`nbf`.
 * - `typ` (RFC 8725 §3.11): internal realms require `isohost+jwt` exactly. External realms
 *   accept `at+jwt` (RFC 9068 §2.1), `JWT`, or no `typ` (many IdPs still send `JWT` or
 *   nothing for access tokens) and refuse every other explicit type (`logout+jwt`,
 *   `secevent+jwt`, `dpop+jwt`…). An OIDC ID token (`typ: JWT`) is kept out by the audience
 *   pin: set `audience` to the API's resource identifier, not the client id.
 * - keys come from the realm's own set only, selected by a bounded `kid`; `jku`, `x5u`,
 *   `x5c` and `jwk` headers are ignored (key-sources.ts).
 *
 * Every token failure is `IsohostError('unauthenticated', <reason>)`; the reason never quotes the token.
 */
import { readFileSync } from 'node:fs';
import { errors, jwtVerify, type JWTVerifyOptions } from 'jose';
import type { IdentityConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import { internalKeySource, KeySetUnavailable, remoteKeySource, staticKeySource, type FetchJwks, type KeySource } from './key-sources.ts';
import { createRealmKeyStore, type RealmKeyStore } from './realm-keys.ts';
import { scopesOf, type VerifiedToken } from './session-claims.ts';
import { INTERNAL_TYP, realmAudience, realmIssuer } from './tokens.ts';
import { createVerifiedCache } from './verified-cache.ts';

export { hasScope, sessionClaims, type VerifiedToken } from './session-claims.ts';

/** Clock tolerance on `exp` and `nbf`, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 60;
/** Longest token accepted, in characters (a request header is bounded anyway; this bounds the work). */
export const MAX_TOKEN_LENGTH = 16_384;
/** Longest `kid` looked up. Internal kids are RFC 7638 thumbprints (43 characters). */
export const MAX_KID_LENGTH = 256;
/** `typ` values an external realm accepts (normalised: lower case, no `application/`). */
export const EXTERNAL_TYPS: readonly string[] = ['at+jwt', 'jwt'];

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

export interface RealmVerifier {
  readonly tenantId: string;
  readonly realm: string;
  /** Verifies a compact JWT for this tenant; rejects with IsohostError('unauthenticated', reason). */
  verify(token: string): Promise<VerifiedToken>;
}

export interface RealmVerifierOptions {
  id: string;
  identity: IdentityConfig;
  dataDir: string;
  /** Required for `jwks_uri` realms: fetches the JWKS (through the egress proxy) and returns its JSON. */
  fetchJwks?: FetchJwks;
  /** The shared key store (registry.ts passes one so rotate/retire apply at once). */
  keys?: RealmKeyStore;
  /** ms since the epoch; drives `exp`/`nbf` checks, the cache and the JWKS cooldown (tests). */
  clock?: () => number;
  /** Verified-token LRU size; 0 disables it. Default 10,000. */
  cacheSize?: number;
}

function unauthenticated(reason: string): IsohostError {
  return new IsohostError('unauthenticated', reason);
}

/**
 * Maps a failure to its reason. jose's claim errors carry the payload, so no jose error is kept
 * as `cause`. A host-side IsohostError (e.g. a corrupt keys.json: config_invalid) passes through
 * unchanged: it is not the caller's fault and must not read as a bad token.
 */
function reasonOf(err: unknown): IsohostError {
  if (err instanceof IsohostError) return err;
  if (err instanceof KeySetUnavailable) return unauthenticated('key set unavailable');
  if (err instanceof errors.JWTExpired) return unauthenticated('token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return unauthenticated(`token has no "${err.claim}" claim`);
    const known: Record<string, string> = { aud: 'wrong audience', iss: 'wrong issuer', nbf: 'token not yet valid', typ: 'wrong token type' };
    return unauthenticated(known[err.claim] ?? `invalid "${err.claim}" claim`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return unauthenticated('algorithm not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return unauthenticated('signature invalid');
  if (err instanceof errors.JWKSNoMatchingKey) return unauthenticated('unknown signing key');
  if (err instanceof errors.JWKSMultipleMatchingKeys) return unauthenticated('ambiguous signing key');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return unauthenticated('malformed token');
  if (err instanceof errors.JOSEError) return unauthenticated(err instanceof errors.JOSENotSupported ? 'unsupported token' : 'token rejected');
  return new IsohostError('unauthenticated', 'token rejected', { cause: err });
}

function keySourceFor(opts: RealmVerifierOptions, clock: () => number): KeySource {
  const identity = opts.identity;
  if (identity.provider === 'iam-internal') {
    return internalKeySource(opts.keys ?? createRealmKeyStore(opts.dataDir), identity.realm);
  }
  const what = `tenant ${opts.id} identity`;
  if (identity.jwks !== undefined) return staticKeySource(identity.jwks, `${what}.jwks`);
  if (identity.jwks_file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(identity.jwks_file, 'utf8'));
    } catch (err) {
      throw new IsohostError('config_invalid', `${what}.jwks_file: cannot read ${identity.jwks_file} as JSON`, { cause: err });
    }
    return staticKeySource(parsed, `${what}.jwks_file`);
  }
  if (identity.jwks_uri !== undefined) {
    if (opts.fetchJwks === undefined) throw new IsohostError('config_invalid', `${what}.jwks_uri needs a fetchJwks (egress proxy)`);
    return remoteKeySource(identity.jwks_uri, opts.fetchJwks, { clock });
  }
  throw new IsohostError('config_invalid', `${what}: one of jwks_file, jwks_uri or jwks is required`);
}

/**
 * @example
 * const verifier = createRealmVerifier({ id: 'business-unit-a', identity: tenant.identity, dataDir: './data' });
 * const verified = await verifier.verify(bearer); // { sub, scope, claims }
 */
export function createRealmVerifier(opts: RealmVerifierOptions): RealmVerifier {
  const clock = opts.clock ?? Date.now;
  const identity = opts.identity;
  const internal = identity.provider === 'iam-internal';
  const source = keySourceFor(opts, clock);
  const cache = createVerifiedCache<VerifiedToken>(opts.cacheSize ?? 10_000);
  const base: JWTVerifyOptions = {
    algorithms: internal ? ['EdDSA'] : [...identity.algorithms],
    issuer: realmIssuer(identity),
    audience: realmAudience(identity, opts.id),
    requiredClaims: ['exp', 'iss', 'aud', 'sub'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    ...(internal ? { typ: INTERNAL_TYP } : {}),
  };

  const getKey: typeof source.getKey = (header, token) => {
    const { kid } = header;
    // The kid is only a lookup key into this realm's set; bound it before any work (RFC 8725 §3.10).
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
      return Promise.reject(unauthenticated('unknown signing key'));
    }
    if (internal && (kid === undefined || !THUMBPRINT.test(kid))) return Promise.reject(unauthenticated('unknown signing key'));
    return source.getKey(header, token);
  };

  async function verifyFully(token: string, generation: number): Promise<VerifiedToken> {
    const now = clock();
    const { payload, protectedHeader } = await jwtVerify(token, getKey, { ...base, currentDate: new Date(now) });
    if (!internal && protectedHeader.typ !== undefined) {
      const typ = String(protectedHeader.typ).toLowerCase().replace(/^application\//, '');
      if (!EXTERNAL_TYPS.includes(typ)) throw unauthenticated('wrong token type');
    }
    if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 255) throw unauthenticated('invalid "sub" claim');
    const verified: VerifiedToken = Object.freeze({ sub: payload.sub, scope: Object.freeze(scopesOf(payload)) as string[], claims: Object.freeze(payload) });
    cache.set(token, verified, (payload.exp as number) * 1000, generation);
    return verified;
  }

  return {
    tenantId: opts.id,
    realm: identity.realm,
    async verify(token) {
      try {
        if (typeof token !== 'string' || token.length === 0) throw unauthenticated('malformed token');
        if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated('token too large');
        const generation = await source.generation();
        return cache.get(token, clock(), generation) ?? (await verifyFully(token, generation));
      } catch (err) {
        throw reasonOf(err);
      }
    },
  };
}
