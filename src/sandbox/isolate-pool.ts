/**
 * Warm pool of blank isolates (prelude loaded, no tenant bound), one list per memory
 * limit, since `memoryLimit` is fixed when an isolate is created. Launch takes one and
 * binds it for good; the pool refills off the launch path, one isolate at a time, with
 * the context deserialised off the main thread (createBlankAsync).
 */
import { createBlankAsync, disposeBlank, prepareSnapshot, type BlankIsolate } from './bridge.ts';
import { handleSyncOp } from './host-utilities.ts';
import { preludeSource } from './prelude-build.ts';

/**
 * How long a refill waits for launches in progress before it makes its isolate anyway.
 * `new Isolate` holds the main thread ~2 ms (5 ms under load); a launch now yields while
 * its bundle loads, so a refill started then would land inside it (launch.warm p50 went
 * from 1 ms to 7 ms under load, measured with eventLoopUtilization). Bounded, so a tenant
 * whose launches keep spinning cannot starve everyone's pool.
 */
const MAX_REFILL_DEFER_MS = 20;

export class IsolatePool {
  readonly #target: number;
  readonly #free = new Map<number, BlankIsolate[]>();
  #refilling = false;
  #closed = false;
  /** Launches between `take()` and `replenish()`. */
  #launching = 0;

  constructor(target: number) {
    this.#target = target;
    prepareSnapshot(preludeSource());
  }

  /** Pre-creates blanks for the given memory limits (at start-up). */
  warm(memoryLimits: Iterable<number>): void {
    for (const mb of memoryLimits) {
      if (!this.#free.has(mb)) this.#free.set(mb, []);
    }
    this.#scheduleRefill();
  }

  /**
   * A blank isolate for `memoryMb`: from the pool when one is ready, else created now
   * (cold; its context is deserialised on the isolate's thread, not the event loop's).
   * Call `replenish()` once the launch that took it is done: a refill's `new Isolate`
   * (~2 ms on the main thread) must not land in the middle of that launch, which now
   * yields to the event loop while the bundle loads.
   */
  async take(memoryMb: number): Promise<{ blank: BlankIsolate; warm: boolean }> {
    this.#launching++;
    let list = this.#free.get(memoryMb);
    if (list === undefined) this.#free.set(memoryMb, (list = []));
    const blank = list.pop();
    if (blank !== undefined) return { blank, warm: true };
    return { blank: await createBlankAsync(memoryMb, handleSyncOp), warm: false };
  }

  /** The launch that took a blank is done: refilling may start (off the launch path, one isolate at a time). */
  replenish(): void {
    this.#launching = Math.max(0, this.#launching - 1);
    this.#scheduleRefill();
  }

  /** Blank isolates ready now, all limits together (for /metrics). */
  get size(): number {
    let n = 0;
    for (const list of this.#free.values()) n += list.length;
    return n;
  }

  #scheduleRefill(): void {
    if (this.#refilling || this.#closed || this.#target === 0) return;
    this.#refilling = true;
    setImmediate(() => void this.#refillOne(0));
  }

  async #refillOne(deferredMs: number): Promise<void> {
    if (this.#closed) {
      this.#refilling = false;
      return;
    }
    if (this.#launching > 0 && deferredMs < MAX_REFILL_DEFER_MS) {
      setTimeout(() => void this.#refillOne(deferredMs + 1), 1);
      return;
    }
    for (const [mb, list] of this.#free) {
      if (list.length < this.#target) {
        try {
          const blank = await createBlankAsync(mb, handleSyncOp);
          if (this.#closed) disposeBlank(blank);
          else list.push(blank);
        } catch {
          // a failed refill leaves the pool short; the next take() launches cold
        }
        this.#refilling = false;
        this.#scheduleRefill();
        return;
      }
    }
    this.#refilling = false;
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#free.values()) for (const b of list) disposeBlank(b);
    this.#free.clear();
  }
}
