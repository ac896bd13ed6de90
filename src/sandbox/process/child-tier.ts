/**
 * The tier a sandbox process runs its one tenant's isolates with (sandbox-main.ts): the
 * in-process launch — a blank from the warm pool, bridge.launch on it — with one change
 * of timing. The pool's refill after a launch starts REFILL_DELAY_MS later, not at once.
 *
 * Why: a refill's `new Isolate` holds the child's main thread ~2 ms (~10 ms on a loaded
 * 2-core box, measured with --cpu-prof in the child) and takes a core. Started at once,
 * it lands exactly when the host is being woken by the `launched` reply and when the
 * launch's first call arrives. Measured on the bench box under load (4.5–7.8): the
 * child → host hop of a launch went from 675–990 µs to 310–365 µs (p50) with the delay.
 * In the shared tier the refill runs on the host's own thread after the launch's
 * continuation, so it has no such hop to slow down.
 *
 * Loaded only after the privilege drop (sandbox-main.ts imports it dynamically), since it
 * brings isolated-vm and the prelude snapshot with it.
 */
import { IsohostError } from '../../errors.ts';
import { launch } from '../bridge.ts';
import { IsolatePool } from '../isolate-pool.ts';
import type { MessageHandler, SandboxTier, TierInstance, TierLaunchSpec } from '../tier.ts';

/** How long after a launch the warm pool starts making its replacement isolate. */
export const REFILL_DELAY_MS = 5;

export class ChildTier implements SandboxTier {
  readonly kind = 'process' as const;
  readonly #pool: IsolatePool;
  #closed = false;

  /** `warm` blank isolates of `memoryMb` (the tenant's one memory limit) kept ready. */
  constructor(memoryMb: number, warm: number) {
    this.#pool = new IsolatePool(warm);
    this.#pool.warm([memoryMb]);
  }

  async launch(spec: TierLaunchSpec, onMessage: MessageHandler): Promise<TierInstance> {
    if (this.#closed) throw new IsohostError('unavailable', 'the sandbox is shutting down');
    try {
      const { blank, warm } = await this.#pool.take(spec.memoryMb);
      return await launch(blank, spec, onMessage, warm);
    } finally {
      // A timer runs after the microtasks that send the launch's reply.
      setTimeout(() => this.#pool.replenish(), REFILL_DELAY_MS);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pool.close();
  }
}
