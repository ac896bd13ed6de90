/**
 * Limits of the storage API (CONTRACT §3) and the checks that enforce them, shared by
 * the store (last line of defence) and the fc.storage binding (first line). Every
 * message names the limit and is safe to show a guest: it holds sizes, never a key,
 * a host path or a namespace.
 */
import { IsohostError } from '../errors.ts';

const MiB = 1_048_576;

export const MAX_KEY_BYTES = 512;
export const MAX_VALUE_BYTES = MiB;
export const MAX_BATCH_OPS = 1000;
export const MAX_BATCH_BYTES = 8 * MiB;

/** Value and batch caps of one keyspace, the same in every engine. */
export interface KeyspaceLimits {
  readonly maxValueBytes: number;
  readonly maxBatchBytes: number;
}
/** An app's keyspace: the `fc.storage` limits (CONTRACT §3). */
export const APP_LIMITS: KeyspaceLimits = { maxValueBytes: MAX_VALUE_BYTES, maxBatchBytes: MAX_BATCH_BYTES };
/** Platform records hold bundles (5 MiB by default, configurable), hence a larger cap; metered like app data. */
export const SYSTEM_LIMITS: KeyspaceLimits = { maxValueBytes: 64 * MiB, maxBatchBytes: 128 * MiB };
export const MAX_LIST_LIMIT = 1000;
/**
 * A list page also stops once it holds this many bytes (at least one entry), so
 * 1000 values of 1 MiB never land in one reply; the cursor then points past it.
 */
export const MAX_PAGE_BYTES = 8 * MiB;

/** Namespaces and app ids: also valid abstract-level sublevel names (bytes > '"', no '!'). */
const NAME = /^[a-z0-9-]{1,63}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 byte length (exact for well-formed strings, which is all we accept). */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** `1048576` → `1 MiB (1048576 bytes)`; other sizes as plain bytes. */
export function describeLimit(bytes: number): string {
  return bytes % MiB === 0 ? `${bytes / MiB} MiB (${bytes} bytes)` : `${bytes} bytes`;
}

function invalid(message: string): IsohostError {
  return new IsohostError('invalid_request', message);
}

/** Checks a namespace or an app id; `what` names it in the error. */
export function assertName(value: unknown, what: 'namespace' | 'app id'): asserts value is string {
  if (typeof value !== 'string' || !NAME.test(value)) throw invalid(`${what} must match [a-z0-9-]{1,63}`);
}

/** What `StorageBackend.open` is given, checked the same way by every engine before it opens anything. */
export function assertTenantSpec(tenant: { namespace: unknown; isolation: unknown; quotaBytes: unknown }): void {
  assertName(tenant.namespace, 'namespace');
  if (tenant.isolation !== 'schema' && tenant.isolation !== 'database') throw invalid('isolation must be "schema" or "database"');
  if (typeof tenant.quotaBytes !== 'number' || !(tenant.quotaBytes >= 0)) throw invalid('quotaBytes must be a number >= 0');
}

/**
 * A key is any well-formed string of 1..512 UTF-8 bytes. Lone surrogates are refused
 * because UTF-8 encoding would silently turn them into U+FFFD, so two distinct keys
 * would collide. Separator characters (`!`), NUL and `../` are ordinary content:
 * the sublevel prefix and range bounds keep them inside the app.
 */
export function assertKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string') throw invalid(`${what} must be a string`);
  const bytes = utf8Bytes(key);
  if (bytes < 1 || bytes > MAX_KEY_BYTES) throw invalid(`${what} must be 1..${MAX_KEY_BYTES} UTF-8 bytes (got ${bytes})`);
  if (!key.isWellFormed()) throw invalid(`${what} must be well-formed Unicode (no lone surrogates)`);
}

/** A list prefix: like a key, but may be empty. */
export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (prefix === '') return;
  assertKey(prefix, 'prefix');
}

/** A list limit: an integer in 1..1000. */
export function assertLimit(limit: unknown): asserts limit is number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalid(`limit must be an integer 1..${MAX_LIST_LIMIT}`);
  }
}

/**
 * Checks a value's type and size (not its JSON syntax: the binding parses guest text
 * once; platform callers produce it with JSON.stringify). Returns its byte length.
 */
export function assertValue(value: unknown, maxBytes: number = MAX_VALUE_BYTES): number {
  if (typeof value !== 'string') throw invalid('value must be a string of JSON text');
  const bytes = utf8Bytes(value);
  if (bytes > maxBytes) {
    throw new IsohostError('payload_too_large', `value is ${bytes} bytes; the limit is ${describeLimit(maxBytes)}`);
  }
  if (!value.isWellFormed()) throw invalid('value must be well-formed Unicode (no lone surrogates)');
  return bytes;
}

/** The opaque list cursor: base64url of the last key returned. */
export function encodeCursor(lastKey: string): string {
  return Buffer.from(lastKey, 'utf8').toString('base64url');
}

/**
 * Decodes a cursor and returns the key to resume strictly after. Only the canonical
 * encoding of a valid key starting with `prefix` is accepted, so a forged cursor can
 * at most move the start point inside the app's own keyspace.
 */
export function decodeCursor(cursor: unknown, prefix: string): string {
  const malformed = invalid('cursor is malformed: pass back the cursor of the previous page unchanged');
  if (typeof cursor !== 'string' || cursor.length > 1024 || !BASE64URL.test(cursor)) throw malformed;
  const bytes = Buffer.from(cursor, 'base64url');
  let key: string;
  try {
    key = strictUtf8.decode(bytes);
  } catch {
    throw malformed;
  }
  if (encodeCursor(key) !== cursor || bytes.length < 1 || bytes.length > MAX_KEY_BYTES) throw malformed;
  if (!key.startsWith(prefix)) throw invalid('cursor does not belong to this prefix');
  return key;
}
