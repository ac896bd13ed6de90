/**
 * The in-process tier: isolates in this process, on isolated-vm's thread pool, for
 * `compute: shared` tenants (and, inside a sandbox process, for the one tenant that
 * process holds). It owns the warm pool of blank isolates. Every launch and call runs
 * on the isolate's own thread under the host's deadline (bridge.ts), so the event loop
 * never waits on guest code.
 *
 * What this tier cannot contain, because it shares the process: a fatal V8 OOM that the
 * memory limit misses (the process aborts) and a built-in that ignores termination
 * (its pool thread stays busy until it returns, after the launch or call has already
 * ended with `timeout`). docs/SECURITY.md; untrusted partners get the process tier.
 */
import { IsohostError } from '../errors.ts';
import { launch, type SandboxInstance } from './bridge.ts';
import { IsolatePool } from './isolate-pool.ts';
import type { MessageHandler, SandboxTier, TierInstance, TierLaunchSpec } from './tier.ts';

export interface InProcessTierOptions {
  /** Blank isolates kept warm per memory limit. */
  warmPool: number;
  /** Memory limits (MB) to keep warm from the start. */
  memoryLimits?: Iterable<number>;
}

const CLOSED = () => new IsohostError('unavailable', 'the host is shutting down');

export class InProcessTier implements SandboxTier {
  readonly kind = 'shared' as const;
  readonly pool: IsolatePool;
  readonly #live = new Set<SandboxInstance>();
  #closed = false;

  constructor(options: InProcessTierOptions) {
    this.pool = new IsolatePool(options.warmPool);
    if (options.memoryLimits) this.pool.warm(options.memoryLimits);
  }

  /** Keeps blanks warm for these memory limits too (after a config reload). */
  warm(memoryLimits: Iterable<number>): void {
    this.pool.warm(memoryLimits);
  }

  async launch(spec: TierLaunchSpec, onMessage: MessageHandler): Promise<TierInstance> {
    if (this.#closed) throw CLOSED();
    let instance: SandboxInstance;
    try {
      const { blank, warm } = await this.pool.take(spec.memoryMb);
      instance = await launch(blank, spec, onMessage, warm);
    } finally {
      this.pool.replenish();
    }
    if (this.#closed) {
      instance.dispose();
      throw CLOSED();
    }
    this.#live.add(instance);
    instance.onEnded(() => this.#live.delete(instance));
    return instance;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const instance of [...this.#live]) instance.dispose();
    this.pool.close();
  }
}
