/**
 * Where a realm's verification keys come from. Each source answers one question — "which key
 * of THIS realm matches this header?" — using only `kid` and `alg`. Headers that point
 * elsewhere (`jku`, `x5u`, `x5c`, an embedded `jwk`) are never read, so a token cannot bring
 * its own key or make the host fetch anything (RFC 8725 §3.10, THREATS §C 24–25).
 *
 * - internal: the realm's own keys on disk (realm-keys.ts), re-read when the index changes.
 * - static:   `jwks_file` (read once at start) or inline `jwks`.
 * - remote:   `jwks_uri`, fetched through the injected `fetchJwks` (the egress proxy).
 *
 * Remote refetch policy (our own small cache rather than jose's createRemoteJWKSet, because
 * `fetchJwks` returns parsed JSON rather than a Response, jose's cooldown only starts after a
 * *successful* fetch — a failing IdP would then be hit once per request — and an injected clock
 * makes the 30 s window testable): at most one fetch per `cooldownMs` (30 s) after a success,
 * per `failureBackoffMs` (5 s) after a failure (or a fetch pending for `timeoutMs`, 5 s);
 * concurrent misses share one fetch; keys older than `maxAgeMs` (10 min) are refreshed, and
 * kept if that refresh fails.
 */
import { createLocalJWKSet, errors, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { IsohostError } from '../errors.ts';
import type { RealmKeyStore } from './realm-keys.ts';

/** Fetches a JWKS document and returns its parsed JSON body. Injected: the lead routes it via the egress proxy. */
export type FetchJwks = (url: string) => Promise<unknown>;

export interface KeySource {
  /** Resolves the verification key for a protected header (jose's JWTVerifyGetKey). */
  getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey>;
  /** Changes whenever the key set changes; verified-token cache entries of an older generation are dropped. */
  generation(): Promise<number>;
}

/** Thrown when a remote key set cannot be fetched; mapped to `unauthenticated: key set unavailable`. */
export class KeySetUnavailable extends Error {}

const MAX_KEYS = 100;

/** Checks a JWKS document: an object with 1..100 public keys (any private member is refused). */
export function checkJwks(value: unknown): JSONWebKeySet {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (typeof value !== 'object' || value === null || !Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS) {
    throw new TypeError(`expected a JWKS with 1..${MAX_KEYS} keys`);
  }
  for (const k of keys) {
    if (typeof k !== 'object' || k === null) throw new TypeError('JWKS keys must be objects');
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'priv']) {
      if (Object.hasOwn(k, member)) throw new TypeError('JWKS must hold public keys only');
    }
  }
  return { keys: keys as JSONWebKeySet['keys'] };
}

/** The realm's own keys; the local JWKS is rebuilt whenever the key store's generation moves. */
export function internalKeySource(keys: RealmKeyStore, realm: string): KeySource {
  let built = -1;
  let resolve: ReturnType<typeof createLocalJWKSet> | undefined;
  return {
    generation: () => keys.refresh(realm),
    async getKey(header, token) {
      const gen = await keys.refresh(realm);
      if (resolve === undefined || gen !== built) {
        resolve = createLocalJWKSet((await keys.publicJwks(realm)) as JSONWebKeySet);
        built = gen;
      }
      return resolve(header, token);
    },
  };
}

/** A fixed key set (`jwks_file` content or inline `jwks`). Throws config_invalid when malformed. */
export function staticKeySource(jwks: unknown, what: string): KeySource {
  let resolve: ReturnType<typeof createLocalJWKSet>;
  try {
    resolve = createLocalJWKSet(checkJwks(jwks));
  } catch (err) {
    throw new IsohostError('config_invalid', `${what}: ${(err as Error).message}`);
  }
  return { generation: async () => 0, getKey: (header, token) => resolve(header, token) };
}

export interface RemoteKeySourceOptions {
  clock?: () => number;
  cooldownMs?: number;
  failureBackoffMs?: number;
  maxAgeMs?: number;
  /** A fetch still pending after this long counts as failed (real time, not `clock`). Default 5 s. */
  timeoutMs?: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`JWKS fetch timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `jwks_uri` through `fetchJwks`, refetched on an unknown kid at most once per cooldown. */
export function remoteKeySource(url: string, fetchJwks: FetchJwks, opts: RemoteKeySourceOptions = {}): KeySource {
  const now = opts.clock ?? Date.now;
  const cooldownMs = opts.cooldownMs ?? 30_000;
  const failureBackoffMs = opts.failureBackoffMs ?? 5_000;
  const maxAgeMs = opts.maxAgeMs ?? 600_000;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  let resolve: ReturnType<typeof createLocalJWKSet> | undefined;
  let fetchedAt = -Infinity;
  let attemptAt = -Infinity;
  let lastFailed = false;
  let inflight: Promise<void> | undefined;
  let gen = 0;
  let lastBody = '';

  const mayFetch = () => inflight !== undefined || now() - attemptAt >= (lastFailed ? failureBackoffMs : cooldownMs);

  function refetch(): Promise<void> {
    if (inflight !== undefined) return inflight;
    attemptAt = now();
    inflight = (async () => {
      try {
        const jwks = checkJwks(await withTimeout(fetchJwks(url), timeoutMs));
        const body = JSON.stringify(jwks);
        resolve = createLocalJWKSet(jwks);
        fetchedAt = now();
        lastFailed = false;
        if (body !== lastBody) {
          gen += 1;
          lastBody = body;
        }
      } catch (err) {
        lastFailed = true;
        throw new KeySetUnavailable('key set unavailable', { cause: err });
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  return {
    generation: async () => gen,
    async getKey(header, token) {
      if ((resolve === undefined || now() - fetchedAt >= maxAgeMs) && mayFetch()) {
        await refetch().catch(() => undefined); // a stale set stays usable while the IdP is down
      }
      if (resolve === undefined) throw new KeySetUnavailable('key set unavailable');
      try {
        return await resolve(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey) || !mayFetch()) throw err;
        await refetch(); // an unknown kid may be a key the IdP just rotated in
        return resolve(header, token);
      }
    },
  };
}
