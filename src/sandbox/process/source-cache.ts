/**
 * Bundle sources a sandbox process holds, by sha256, so the host sends a bundle's
 * source (with its conversion to a script, script-form.ts) to a process once rather than
 * with every launch (the process tier, issue 10).
 *
 * Both sides run this same class over the same sequence of launches: the child keeps
 * the sources, the host a mirror of which sha256s the child has (values `true`). The
 * channel is ordered, so the two agree; should they not, the child answers a launch it
 * has no source for with `need_source` and the host sends it again with the source.
 *
 * Bounded in bytes (UTF-8 size of the sources and their conversions, heldBytes), least
 * recently launched first out; a bundle larger than the whole budget is not kept. A
 * sandbox process holds one tenant only, so nothing here is shared across tenants.
 */

import type { Conversion } from '../script-form.ts';

/** Bytes of bundle source one sandbox process keeps. */
export const SOURCE_CACHE_MAX_BYTES = 16 * 1024 * 1024;

/** What a held bundle counts against the budget: its source's UTF-8 size, and its conversion's when one came with it. */
export function heldBytes(source: string, converted: Conversion | undefined): number {
  const utf8 = (t: string) => Buffer.byteLength(t, 'utf8');
  if (converted === undefined) return utf8(source);
  return utf8(source) + ('refused' in converted ? utf8(converted.refused.message) : utf8(converted.code) + utf8(converted.mappings));
}

export class SourceCache<V> {
  readonly #maxBytes: number;
  readonly #entries = new Map<string, { value: V; bytes: number }>();
  #bytes = 0;

  constructor(maxBytes = SOURCE_CACHE_MAX_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** The entry for `sha256`, now the most recently used; undefined if not held. */
  get(sha256: string): V | undefined {
    const entry = this.#entries.get(sha256);
    if (entry === undefined) return undefined;
    // Map order is insertion order: re-inserting makes it the most recently used.
    this.#entries.delete(sha256);
    this.#entries.set(sha256, entry);
    return entry.value;
  }

  /** Keeps `value` (of `bytes` bytes) as the most recently used, evicting the least recently used to fit. */
  put(sha256: string, value: V, bytes: number): void {
    if (this.get(sha256) !== undefined || bytes > this.#maxBytes) return;
    while (this.#bytes + bytes > this.#maxBytes) {
      const [oldest, old] = this.#entries.entries().next().value!;
      this.#entries.delete(oldest);
      this.#bytes -= old.bytes;
    }
    this.#entries.set(sha256, { value, bytes });
    this.#bytes += bytes;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }
}
