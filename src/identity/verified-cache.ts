/**
 * A bounded LRU of verified tokens, so a busy caller does not pay a signature check per
 * request. Keyed by the SHA-256 of the token (the bearer token itself is not kept as a key).
 * An entry is served only while `now < exp` (stricter than the 60 s skew the full check
 * allows) and only for the key-set generation it was verified under, so a rotated-out,
 * retired or IdP-removed key stops authorising cached tokens at once.
 */
import { hash } from 'node:crypto';

interface Entry<T> { value: T; expMs: number; generation: number }

export interface VerifiedCache<T> {
  get(token: string, nowMs: number, generation: number): T | undefined;
  set(token: string, value: T, expMs: number, generation: number): void;
  readonly size: number;
}

/** @example const cache = createVerifiedCache<VerifiedToken>(10_000); */
export function createVerifiedCache<T>(max = 10_000): VerifiedCache<T> {
  const entries = new Map<string, Entry<T>>();
  // One-shot crypto.hash (Node ≥ 21.7): no Hash object per request on the hot path.
  const keyOf = (token: string) => hash('sha256', token, 'base64url');
  return {
    get(token, nowMs, generation) {
      const key = keyOf(token);
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      entries.delete(key);
      if (entry.generation !== generation || nowMs >= entry.expMs) return undefined;
      entries.set(key, entry); // most recently used goes last
      return entry.value;
    },
    set(token, value, expMs, generation) {
      if (max <= 0) return;
      const key = keyOf(token);
      entries.delete(key);
      entries.set(key, { value, expMs, generation });
      while (entries.size > max) entries.delete(entries.keys().next().value!);
    },
    get size() {
      return entries.size;
    },
  };
}
