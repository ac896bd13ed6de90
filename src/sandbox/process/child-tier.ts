/**
 * The tier a sandbox process runs its one tenant's isolates with (sandbox-main.ts): the
 * in-process launch — a blank from the warm pool, bridge.launch on it — with two changes.
 *
 * 1. The pool's refill after a launch starts REFILL_DELAY_MS later, not at once. A
 *    refill's `new Isolate` holds the child's main thread ~2 ms (~10 ms on a loaded
 *    2-core box, measured with --cpu-prof in the child) and takes a core. Started at
 *    once, it lands exactly when the host is being woken by the `launched` reply and when
 *    the launch's first call arrives. Measured on the bench box under load (4.5–7.8): the
 *    child → host hop of a launch went from 675–990 µs to 310–365 µs (p50) with the
 *    delay. In the shared tier the refill runs on the host's own thread after the
 *    launch's continuation, so it has no such hop to slow down.
 *
 * 2. The spare. When a launch repeats the one before it — the same bundle, app, version,
 *    user and limits (its spec but for the label, which names the instance) — the
 *    sandbox loads one more instance of it ahead, from a blank of the pool, and the next
 *    launch that repeats it again takes that instance as it is: the bundle's top-level
 *    code and the exports step already ran, under the same CPU and wall deadline and
 *    with platform calls refused, as in any launch. What a launch then waits for is the
 *    hop to this process and back, not the bundle's load on the isolate's thread
 *    (measured: `launch.warm.process` p50 1.58–1.95 ms → 0.80–1.04 ms on the bench box).
 *    - What differs for the mini-app: its top-level code ran before the launch was asked
 *      for (a `Date.now()` there is earlier); nothing else can tell, since the key holds
 *      everything `fc` is bound to and each spare is a fresh isolate used once.
 *    - What it costs: one more isolate in this process (planFor counts it in the
 *      memory cap), and one top-level run that is thrown away when the next launch is of
 *      something else. Only repeats make a spare, so a process whose launches all differ
 *      (a new user each time) never makes one, and at most one spare is made per launch.
 *    - A spare whose load fails (its top-level code breached or threw, though the launch
 *      before succeeded) is dropped without a word, and no spare is made again until a
 *      launch repeats the last one anew: the launch itself then fails as it would have,
 *      and counts as the tenant's breach on the host as before.
 *
 * Loaded only after the privilege drop (sandbox-main.ts imports it dynamically), since it
 * brings isolated-vm and the prelude snapshot with it.
 */
import { IsohostError } from '../../errors.ts';
import { launch, type SandboxInstance } from '../bridge.ts';
import { IsolatePool } from '../isolate-pool.ts';
import type { MessageHandler, SandboxTier, TierInstance, TierLaunchSpec } from '../tier.ts';

/** How long after a launch the warm pool starts making its replacement isolate (and the spare its next instance). */
export const REFILL_DELAY_MS = 5;

interface Spare {
  readonly key: string;
  readonly instance: SandboxInstance;
  readonly onMessage: MessageHandler;
}

/** What makes two launches the same: everything of the spec but the label (the instance's name). */
function keyOf(spec: TierLaunchSpec): string {
  return JSON.stringify([spec.sha256, spec.metaJson, spec.memoryMb, spec.cpuMs, spec.wallMs]);
}

export class ChildTier implements SandboxTier {
  readonly kind = 'process' as const;
  readonly #pool: IsolatePool;
  #closed = false;
  /** The key of the last launch asked for. */
  #lastKey: string | undefined;
  #spare: Spare | undefined;
  #preparing = false;

  /** `warm` blank isolates of `memoryMb` (the tenant's one memory limit) kept ready. */
  constructor(memoryMb: number, warm: number) {
    this.#pool = new IsolatePool(warm);
    this.#pool.warm([memoryMb]);
  }

  async launch(spec: TierLaunchSpec, onMessage: MessageHandler): Promise<TierInstance> {
    if (this.#closed) throw new IsohostError('unavailable', 'the sandbox is shutting down');
    const key = keyOf(spec);
    const repeat = key === this.#lastKey;
    this.#lastKey = key;
    const spare = this.#takeSpare(key, onMessage);
    if (spare !== undefined) {
      spare.relabel(spec.label);
      setTimeout(() => void this.#prepare(spec, onMessage, key), REFILL_DELAY_MS);
      return spare;
    }
    let loaded = false;
    try {
      const { blank, warm } = await this.#pool.take(spec.memoryMb);
      const instance = await launch(blank, spec, onMessage, warm);
      loaded = true;
      return instance;
    } finally {
      // A timer runs after the microtasks that send the launch's reply.
      setTimeout(() => {
        this.#pool.replenish();
        if (loaded && repeat) void this.#prepare(spec, onMessage, key);
      }, REFILL_DELAY_MS);
    }
  }

  /** The spare, if it is of this launch and still whole; any other spare is disposed (the launches moved on). */
  #takeSpare(key: string, onMessage: MessageHandler): SandboxInstance | undefined {
    const spare = this.#spare;
    if (spare === undefined) return undefined;
    this.#spare = undefined;
    if (spare.key === key && spare.onMessage === onMessage && !spare.instance.ended) return spare.instance;
    // Disposing an isolate holds the thread a while: not on this launch's path.
    setTimeout(() => spare.instance.dispose(), REFILL_DELAY_MS);
    return undefined;
  }

  /** Loads the spare for `key` unless one is there or loading, or the launches moved on meanwhile. */
  async #prepare(spec: TierLaunchSpec, onMessage: MessageHandler, key: string): Promise<void> {
    if (this.#closed || this.#preparing || this.#spare !== undefined || this.#lastKey !== key) return;
    this.#preparing = true;
    let instance: SandboxInstance;
    try {
      const { blank, warm } = await this.#pool.take(spec.memoryMb);
      try {
        instance = await launch(blank, { ...spec, label: `${spec.label} (spare)` }, onMessage, warm);
      } finally {
        this.#pool.replenish();
      }
    } catch {
      // Only a repeat from now on makes another spare of it.
      if (this.#lastKey === key) this.#lastKey = undefined;
      return;
    } finally {
      this.#preparing = false;
    }
    if (this.#closed || this.#spare !== undefined || this.#lastKey !== key) instance.dispose();
    else this.#spare = { key, instance, onMessage };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#spare?.instance.dispose();
    this.#spare = undefined;
    this.#pool.close();
  }
}
