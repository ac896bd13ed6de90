/**
 * The sandbox-tier seam (issue 10, "cordons"). Whatever runs isolates sits behind this
 * one interface: the in-process tier (isolates in this process, for `compute: shared`
 * tenants) and the process tier (isolates in a supervised sandbox process that holds one
 * `compute: process` tenant alone). `InstanceHost` and upload validation reach isolates
 * only through it.
 *
 * Message-shaped on purpose: everything that crosses is plain, serialisable data (strings,
 * numbers, JSON text, ArrayBuffers). The one thing that does not cross is the host's
 * `MessageHandler`: platform ops (storage, fetch, log, timers) are always served on the
 * host side by bindings closed over the TenantContext, so a sandbox process holds no
 * store and no credential; it only forwards `(op, payload, bytes)` for the call running.
 *
 * Failures are classified by state, never by text a guest could write: a tier knows when
 * its own deadline fired, when the isolate hit its memory limit (isolated-vm disposed
 * it), and when its process died.
 */
import type { Reply } from '../bindings/types.ts';
import type { IsohostError } from '../errors.ts';
import type { Conversion } from './script-form.ts';

/** What a tier needs to start one instance. Plain data only. */
export interface TierLaunchSpec {
  /** The bundle's ES module source (UTF-8 text, already size-checked). */
  readonly source: string;
  /**
   * The bundle's conversion to a script (script-form.ts), or esbuild's refusal of it, when
   * the host made it already: the process tier sends it with the source, so a sandbox
   * process never starts esbuild. Absent, the tier converts the source itself on first
   * sight.
   */
  readonly converted?: Conversion;
  readonly sha256: string;
  /** JSON text `{ app: { id, version }, user }` handed to the prelude's `bind`. */
  readonly metaJson: string;
  /** Names the instance (`tenant/app@version/instance`) in host logs only; never enters the isolate. */
  readonly label: string;
  /** The isolate's heap limit. */
  readonly memoryMb: number;
  /** CPU budget of the bundle's top-level code and of the exports step. */
  readonly cpuMs: number;
  /** Wall budget of the same. */
  readonly wallMs: number;
}

export interface CallLimits {
  readonly cpuMs: number;
  readonly wallMs: number;
}

/** What the host attaches to one call: handed back with every platform message of that call. */
export interface CallTag {
  /** The call starts running in the isolate now; its wall budget ends at `wallEnd` (epoch ms). */
  started(wallEnd: number): void;
}

/**
 * Serves one platform message of the call running (host side, never crosses a process).
 * `tag` is the tag of the call that sent it; undefined outside calls (refused).
 */
export type MessageHandler = (op: string, payload: unknown, bytes: ArrayBuffer | undefined, tag: CallTag | undefined) => Promise<Reply>;

/** One launched instance: one tenant's app in one isolate, for its whole life. */
export interface TierInstance {
  /** Names of the functions the bundle exports (own keys of the module namespace). */
  readonly methods: readonly string[];
  /** True once the instance has ended (disposed, breached, or its process died). */
  readonly ended: boolean;
  /** Whether its isolate came ready from a warm pool (launch.warm vs launch.cold); unknown if absent. */
  readonly warm?: boolean;
  /**
   * Calls a method with JSON text args; resolves with the result JSON text. Rejects with
   * an IsohostError: `miniapp_error` (the guest threw), `timeout` / `resource_exhausted`
   * (a limit breach: the instance has ended), `not_found` (it had already ended),
   * `unavailable` (its sandbox process died).
   */
  call(method: string, argsJson: string, limits: CallLimits, tag?: CallTag): Promise<string>;
  /** Ends the instance; idempotent. In-flight calls reject with `reason` (default `not_found`). */
  dispose(reason?: IsohostError): void;
  /** Called once when the instance ends, whatever ended it. */
  onEnded(listener: (reason: IsohostError | undefined) => void): void;
}

export interface SandboxTier {
  readonly kind: 'shared' | 'process';
  /**
   * Starts an instance: evaluates the bundle's top-level code and reads its exports,
   * both under `spec.cpuMs`/`spec.wallMs`, off the host's main thread. Rejects with a
   * coded IsohostError (`invalid_request` for a bad bundle, `timeout`,
   * `resource_exhausted`, `unavailable`).
   */
  launch(spec: TierLaunchSpec, onMessage: MessageHandler): Promise<TierInstance>;
  /** Ends every instance of this tier and frees what it holds (pool, processes). */
  close(): Promise<void>;
}
