/**
 * What a verified token grants (scopes) and what a mini-app may see of it (`fc.session.user`).
 *
 * The session allowlist: `sub`, and in `claims` only `name`, `email`, `roles`, `scope`, `iss`,
 * `aud`. Everything else — `jti`, `iat`/`exp`/`nbf`, `azp`, `sid`, `nonce`, addresses, phone
 * numbers, groups, IdP-specific extras — is dropped, and the raw token never crosses into the
 * isolate (a mini-app holding it could replay it against the API or the IdP, RFC 8725 §3.9).
 * Values are type-checked and length-bounded, so a hostile IdP claim cannot bloat every call.
 */
import type { JWTPayload } from 'jose';

/** A token that passed every check of its tenant's realm. */
export interface VerifiedToken {
  sub: string;
  /** Granted scopes (RFC 9068 §2.2.3 `scope`, space-separated in the token). */
  scope: string[];
  /** The verified claims set. Host-side only: never hand this to a mini-app, use sessionClaims. */
  claims: JWTPayload;
}

/**
 * The shape of `fc.session.user`, the one type for it host-wide (HTTP callers, instances,
 * one-shot reuse). A token's user always has `scope` and `iss`; the user of a CLI
 * `run --sub` (no token) has no claims.
 */
export interface SessionUser {
  sub: string;
  claims: SessionClaims;
}

/** The allowlisted claims a mini-app may see. */
export interface SessionClaims {
  name?: string;
  email?: string;
  roles?: string[];
  scope?: string[];
  iss?: string;
  aud?: string | string[];
}

const MAX_SCOPES = 64;

function boundedStrings(value: unknown, maxItems: number, maxLength: number): string[] {
  const list = typeof value === 'string' ? value.split(' ') : Array.isArray(value) ? value : [];
  return list.filter((s): s is string => typeof s === 'string' && s !== '' && s.length <= maxLength).slice(0, maxItems);
}

function boundedString(value: unknown, maxLength: number): string | undefined {
  return typeof value === 'string' && value.length <= maxLength ? value : undefined;
}

/**
 * Scopes of a claims set: `scope` (space-separated string per RFC 9068, or a list), else `scp`
 * (the list form some IdPs use).
 */
export function scopesOf(payload: JWTPayload): string[] {
  const raw = payload.scope !== undefined ? payload.scope : payload.scp;
  return [...new Set(boundedStrings(raw, MAX_SCOPES, 128))];
}

/**
 * Whether a verified token carries `scope` (exact match; no wildcard or prefix logic).
 *
 * @example
 * if (!hasScope(verified, 'apps:call')) throw new IsohostError('forbidden', 'scope apps:call required');
 */
export function hasScope(verified: Pick<VerifiedToken, 'scope'>, scope: string): boolean {
  return verified.scope.includes(scope);
}

/**
 * The allowlisted view of a verified claims set given to `fc.session.user`.
 *
 * @example
 * sessionClaims(verified.claims); // { sub: 'alice', claims: { scope: ['apps:call'], iss: 'isohost:realm:bu-a', aud: 'business-unit-a' } }
 */
export function sessionClaims(payload: JWTPayload): SessionUser {
  const claims: SessionClaims = { scope: scopesOf(payload), iss: String(payload.iss ?? '') };
  const name = boundedString(payload.name, 256);
  const email = boundedString(payload.email, 320);
  if (name !== undefined) claims.name = name;
  if (email !== undefined) claims.email = email;
  if (payload.roles !== undefined) claims.roles = boundedStrings(Array.isArray(payload.roles) ? payload.roles : [], 64, 128);
  if (typeof payload.aud === 'string') claims.aud = payload.aud;
  else if (Array.isArray(payload.aud)) claims.aud = boundedStrings(payload.aud, 16, 256);
  return { sub: String(payload.sub ?? ''), claims };
}
