/**
 * The one rule both storage engines keep around a purge: operations that start while a
 * purge runs wait for it, and a purge waits for the operations already under way, so no
 * write lands half before and half after a purge and no read sees a store being wiped.
 *
 * @example
 * const gate = new PurgeGate();
 * await gate.run(() => db.get(key));          // an ordinary operation
 * await gate.exclusive(() => location.wipe()); // the purge itself
 */
export class PurgeGate {
  #inflight = 0;
  #drained: (() => void) | null = null;
  #purging: Promise<void> | null = null;

  /** Runs an operation; waits while a purge runs, and lets a purge wait for it. */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    while (this.#purging !== null) await this.#purging;
    this.#inflight++;
    try {
      return await operation();
    } finally {
      if (--this.#inflight === 0 && this.#drained !== null) this.#drained();
    }
  }

  /** Runs `purge` alone: after every operation under way has ended, before any new one starts. */
  async exclusive(purge: () => Promise<void>): Promise<void> {
    while (this.#purging !== null) await this.#purging;
    let finish!: () => void;
    this.#purging = new Promise((resolve) => {
      finish = resolve;
    });
    try {
      if (this.#inflight > 0) {
        await new Promise<void>((resolve) => {
          this.#drained = resolve;
        });
      }
      this.#drained = null;
      await purge();
    } finally {
      this.#purging = null;
      finish();
    }
  }
}
