/**
 * The message-shaped seam between an instance (wherever its isolate runs) and the
 * host-side bindings. The guest prelude sends `(op, payload)`; the bridge validates
 * the payload's shape per op and hands it to the binding that owns the op. A future
 * sandbox process carries exactly these messages over a pipe.
 */
import type { IsohostError } from '../errors.ts';

/** Everything a binding may know about the call it serves. Frozen; built at launch. */
export interface CallScope {
  readonly instanceId: string;
  readonly appId: string;
  readonly appVersion: string;
  /** For logs and audit only; bindings never use it to choose data. */
  readonly tenantId: string;
  /** The HTTP request that made the call, for the tenant's log stream; absent without one. */
  readonly requestId?: string | undefined;
  /** Aborted when the call ends (return, throw, timeout, dispose). */
  readonly signal: AbortSignal;
  /** Epoch ms when the call's wall budget ends. */
  readonly deadline: number;
}

/** A reply to one guest message: JSON text, optional bytes (fetch bodies). */
export interface Reply {
  json: string;
  bytes?: ArrayBuffer;
}

/**
 * A binding handles the ops of one capability. `payload` is the parsed JSON the guest
 * sent (untrusted: validate it, with zod, before use); `bytes` an optional ArrayBuffer
 * copy. Throw `IsohostError` for a coded failure; anything else becomes `internal`.
 */
export interface Binding {
  readonly ops: readonly string[];
  handle(op: string, payload: unknown, bytes: ArrayBuffer | undefined, scope: CallScope): Promise<Reply>;
  /**
   * Resolves once the work this binding took on and has not finished is done (the log
   * binding's lines still being written, a slice per event-loop turn); undefined when
   * there is none, which is most calls (nothing to await on the call path). A call's
   * answer waits for it, so whatever the call wrote is out before the caller sees the result.
   */
  drained?(): Promise<void> | undefined;
}

export type { IsohostError };
