/**
 * Serializes async work per key. A write must read the old value's size to keep the
 * quota counter exact; two concurrent sets of one key would otherwise both subtract
 * the same old size. Work on different keys runs concurrently.
 */
export class KeyedLock {
  /** Per busy key, the promise the next waiter chains after. Empty when idle. */
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * Runs `fn` once every key in `keys` is free, holding all of them until it settles.
   * All keys are claimed in one synchronous step, so waits only point at earlier
   * claims and two multi-key holders cannot deadlock.
   *
   * @example
   * await lock.run(['a', 'b'], async () => { ... });
   */
  async run<T>(keys: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const unique = new Set(keys);
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waits: Promise<void>[] = [];
    for (const key of unique) {
      const previous = this.#tails.get(key);
      if (previous !== undefined) waits.push(previous);
      this.#tails.set(key, done);
    }
    try {
      if (waits.length > 0) await Promise.all(waits);
      return await fn();
    } finally {
      release();
      for (const key of unique) if (this.#tails.get(key) === done) this.#tails.delete(key);
    }
  }

  /** Number of keys currently held or awaited (for tests). */
  get size(): number {
    return this.#tails.size;
  }
}
