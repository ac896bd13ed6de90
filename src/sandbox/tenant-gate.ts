/**
 * Per-tenant admission: the instance cap, the number of calls running at once, an
 * optional call rate (token bucket) and a budget of limit breaches. One tenant flooding
 * its own gate waits or gets `resource_exhausted`; other tenants have gates of their own
 * (THREATS B17).
 */
import { IsohostError } from '../errors.ts';
import type { TenantLimits } from '../config/schema.ts';
import { TokenBucket } from '../token-bucket.ts';

/** Calls that may wait for a running slot, per unit of concurrency. */
const QUEUE_FACTOR = 4;
/** Limit breaches a tenant may cause back to back before `breaches_per_min` applies. */
const BREACH_BURST = 3;

export class TenantGate {
  readonly #limits: TenantLimits;
  #instances = 0;
  #running = 0;
  readonly #waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** Calls per second, burst 2×; undefined when `rate_per_sec` is 0 (off). */
  readonly #rate: TokenBucket | undefined;
  readonly #breaches: TokenBucket;

  constructor(limits: TenantLimits) {
    this.#limits = limits;
    this.#rate = limits.rate_per_sec > 0 ? new TokenBucket(limits.rate_per_sec * 2, limits.rate_per_sec, 1000) : undefined;
    this.#breaches = new TokenBucket(BREACH_BURST, limits.breaches_per_min, 60_000);
  }

  /** Records a limit breach (an isolate disposed for CPU, wall time or memory). */
  noteBreach(): void {
    this.#breaches.take();
  }

  #checkBreaches(): void {
    if (this.#breaches.tokens < 1) {
      const waitMs = Math.ceil(this.#breaches.msUntil());
      throw new IsohostError('resource_exhausted', `the tenant broke its limits more than ${this.#limits.breaches_per_min} times a minute; calls are refused for about ${waitMs} ms`, {
        details: { retryAfterMs: waitMs },
      });
    }
  }

  reserveInstance(): void {
    this.#checkBreaches();
    if (this.#instances >= this.#limits.instances) {
      throw new IsohostError('resource_exhausted', `the tenant already has ${this.#limits.instances} live instances (its limit)`);
    }
    this.#instances++;
  }

  releaseInstance(): void {
    this.#instances = Math.max(0, this.#instances - 1);
  }

  /** Resolves when the call may run; rejects with resource_exhausted past the rate or queue bound. */
  enterCall(): Promise<void> {
    try {
      this.#checkBreaches();
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#rate !== undefined) {
      if (this.#rate.tokens < 1) {
        // Time until the bucket holds one token again: what the HTTP layer sends as Retry-After.
        const retryAfterMs = Math.ceil(this.#rate.msUntil());
        return Promise.reject(new IsohostError('resource_exhausted', `the tenant is over its rate limit of ${this.#limits.rate_per_sec} calls/s`, { details: { retryAfterMs } }));
      }
      this.#rate.take();
    }
    if (this.#running < this.#limits.concurrency) {
      this.#running++;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#limits.concurrency * QUEUE_FACTOR) {
      return Promise.reject(new IsohostError('resource_exhausted', `the tenant has too many calls in progress (limit ${this.#limits.concurrency})`));
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /**
   * Frees a running slot: the oldest waiting call takes it, unless the tenant spent its
   * breach budget while that call waited — then it is refused as a new call would be, and
   * the slot goes to the next. Without that, the calls queued behind a runaway (up to
   * QUEUE_FACTOR × concurrency) each ran and breached after the budget was spent: seven
   * breaches where the burst allows three, each an isolate disposed and replaced on the
   * host's main thread (bench neighbour.p99_ratio.launch-spin).
   */
  leaveCall(): void {
    for (let next = this.#waiting.shift(); next !== undefined; next = this.#waiting.shift()) {
      try {
        this.#checkBreaches();
      } catch (err) {
        next.reject(err);
        continue;
      }
      return next.resolve();
    }
    this.#running--;
  }
}
