/**
 * Launches and calls instances, through a SandboxTier only (tier.ts): the host asks
 * `tierFor(tenant)` which tier runs a tenant's isolates, and everything that crosses is
 * plain data. Host-side bindings are built here per instance, closed over that
 * instance's TenantContext; the guest never names a tenant, and a tier (even one in
 * another process) only forwards the running call's platform messages back here.
 *
 * Every launch — an instance, or an upload's validation — goes through the tenant's
 * gate like a call does: the instance cap, a rate token, a concurrency slot and the
 * breach budget (THREATS F45).
 */
import type { SessionUser } from '../identity/session-claims.ts';
import { IsohostError } from '../errors.ts';
import type { Binding, CallScope, Reply } from '../bindings/types.ts';
import { storageBinding } from '../bindings/storage/index.ts';
import { logBinding } from '../bindings/log/index.ts';
import { timerBinding } from '../bindings/timers/index.ts';
import type { TenantContext } from '../tenants/context.ts';
import type { CallTag, MessageHandler, SandboxTier, TierInstance, TierLaunchSpec } from './tier.ts';
import { newInstanceId } from './instance-id.ts';
import { TenantGate } from './tenant-gate.ts';

/** One type for the session user host-wide (src/identity/session-claims.ts). */
export type { SessionUser };

export interface AppBundle {
  id: string;
  version: string;
  source: string;
  sha256: string;
}

/**
 * Builds the fetch binding for one instance (wired by the egress layer). The calling app
 * and instance reach the binding per call, in its CallScope.
 */
export type FetchBindingFactory = (tenant: TenantContext) => Binding;

export interface InstanceInfo {
  readonly id: string;
  readonly tenantId: string;
  readonly app: string;
  readonly version: string;
  /** The subject that launched it; null for CLI runs without --sub. */
  readonly sub: string | null;
  readonly methods: readonly string[];
  lastUsed: number;
}

interface Live {
  info: InstanceInfo;
  tenant: TenantContext;
  sandbox: TierInstance;
  /** Calls accepted and not yet ended (running or queued in the sandbox). */
  calls: number;
  /** Resolves once the lines its calls logged so far are written; undefined when none wait (Binding.drained). */
  drained: () => Promise<unknown> | undefined;
}

/** The source and identity of a bundle to validate (an upload). */
export interface BundleToValidate {
  source: string;
  sha256: string;
}

export interface InstanceHostOptions {
  /**
   * The sandbox tier that runs `tenant`'s isolates, asked at every launch. The hook for
   * cordons: `compute.isolation: shared` tenants get the in-process tier
   * (in-process-tier.ts); the process tier (process-tier.ts) plugs in here for
   * `tenants[].compute.isolation === 'process'`.
   */
  tierFor: (tenant: TenantContext) => SandboxTier;
  fetchBinding?: FetchBindingFactory;
  /** `deployment.node_id`: named in every instance id (instance-id.ts), so other nodes can forward to it. */
  nodeId?: string;
}

/** Failures that are limit breaches: they count against the tenant's breach budget wherever they happen. */
function isLimitBreach(reason: unknown): boolean {
  return reason instanceof IsohostError && (reason.code === 'timeout' || reason.code === 'resource_exhausted');
}

const refuseMessages: MessageHandler = () => Promise.reject(new IsohostError('unavailable', 'platform calls are not available while a bundle is validated'));

export class InstanceHost {
  readonly #tierFor: (tenant: TenantContext) => SandboxTier;
  readonly #fetchBinding: FetchBindingFactory | undefined;
  readonly #nodeId: string | undefined;
  readonly #live = new Map<string, Live>();
  readonly #gates = new WeakMap<TenantContext, TenantGate>();

  constructor(options: InstanceHostOptions) {
    this.#tierFor = options.tierFor;
    this.#fetchBinding = options.fetchBinding;
    this.#nodeId = options.nodeId;
  }

  #gate(tenant: TenantContext): TenantGate {
    let g = this.#gates.get(tenant);
    if (g === undefined) this.#gates.set(tenant, (g = new TenantGate(tenant.limits)));
    return g;
  }

  /** Counts one limit breach against `tenant`'s budget that no call of this host saw end: a crash of its sandbox process its own code caused (process-tier.ts isTenantCaused). */
  noteBreach(tenant: TenantContext): void {
    this.#gate(tenant).noteBreach();
  }

  /** Launches `app` for `tenant` and `user`; the isolate is bound to them for its whole life. */
  async launch(tenant: TenantContext, app: AppBundle, user: SessionUser | null): Promise<{ info: InstanceInfo; warm: boolean }> {
    // Every failed launch counts as a breach: top-level spin or a bundle that throws costs
    // the host an isolate each time, and a tenant must not churn them for free (THREATS F45).
    // The instance's id, logger and bindings are made only once the gate has let it in.
    const { sandbox, prepared } = await this.#start(
      tenant,
      () => {
        const id = newInstanceId(this.#nodeId);
        const { bindings, drained } = this.#bindingsFor(tenant, app, id);
        const spec = this.#spec(tenant, app, JSON.stringify({ app: { id: app.id, version: app.version }, user }), `${tenant.id}/${app.id}@${app.version}/${id}`);
        const onMessage: MessageHandler = (op, payload, bytes, tag) => this.#dispatch(bindings, op, payload, bytes, tag as Scope | undefined);
        return { spec, onMessage, id, drained };
      },
      () => true,
    );
    const { id, drained } = prepared;
    const info: InstanceInfo = { id, tenantId: tenant.id, app: app.id, version: app.version, sub: user?.sub ?? null, methods: sandbox.methods, lastUsed: Date.now() };
    const live: Live = { info, tenant, sandbox, calls: 0, drained };
    this.#live.set(id, live);
    // A limit breach ended it (the calls queued behind the culprit fail with the same
    // error): counted against the tenant's breach budget once, here.
    sandbox.onEnded((reason) => {
      if (isLimitBreach(reason)) this.#gate(tenant).noteBreach();
      this.#forget(live);
    });
    return { info, warm: sandbox.warm ?? false };
  }

  /**
   * Proves an uploaded bundle loads — it compiles, imports nothing, its top-level code
   * runs within the tenant's limits and it exports at least one function — by launching
   * it through the tenant's own tier and gate, in an isolate whose platform calls are
   * all refused, disposed right after. Returns the exported method names. Only limit
   * breaches count against the breach budget here: a rejected upload is the answer the
   * upload asked for (the rate and concurrency still count it).
   */
  async validate(tenant: TenantContext, bundle: BundleToValidate): Promise<string[]> {
    const meta = JSON.stringify({ app: { id: 'validation', version: 'validation' }, user: null });
    const spec = this.#spec(tenant, { id: 'validation', version: bundle.sha256.slice(0, 16), ...bundle }, meta, `${tenant.id}/validation@${bundle.sha256.slice(0, 16)}`);
    const { sandbox } = await this.#start(tenant, () => ({ spec, onMessage: refuseMessages }), isLimitBreach);
    const methods = [...sandbox.methods];
    sandbox.dispose();
    this.#gate(tenant).releaseInstance();
    return methods;
  }

  #spec(tenant: TenantContext, app: AppBundle, metaJson: string, label: string): TierLaunchSpec {
    const limits = tenant.limits;
    return { source: app.source, sha256: app.sha256, metaJson, label, memoryMb: limits.memory_mb, cpuMs: limits.cpu_ms, wallMs: limits.wall_ms };
  }

  /**
   * Admits one launch through the tenant's gate, then makes what it needs (`prepare`: its
   * spec and message handler, an instance's id, logger and bindings) and starts it in the
   * tenant's tier. A refused launch (rate, concurrency, instances, breach budget) costs the
   * host the refusal alone: made before the gate, a tenant whose launches were refused
   * thousands of times a second nearly doubled the host's allocation rate, and its
   * garbage collections on the main thread grew with it (neighbour.p99_ratio.launch-spin).
   * On success the instance holds one of the tenant's instance slots (released by #forget
   * or by the caller); a failure gives it back and counts as a breach if `isBreach` says so.
   */
  async #start<P extends { spec: TierLaunchSpec; onMessage: MessageHandler }>(tenant: TenantContext, prepare: () => P, isBreach: (err: unknown) => boolean): Promise<{ sandbox: TierInstance; prepared: P }> {
    const gate = this.#gate(tenant);
    gate.reserveInstance();
    try {
      await gate.enterCall();
    } catch (err) {
      gate.releaseInstance();
      throw err;
    }
    let prepared: P;
    try {
      prepared = prepare();
    } catch (err) {
      // The host's own failure (its store, say), not the tenant's: no breach.
      gate.leaveCall();
      gate.releaseInstance();
      throw err;
    }
    try {
      return { sandbox: await this.#tierFor(tenant).launch(prepared.spec, prepared.onMessage), prepared };
    } catch (err) {
      gate.releaseInstance();
      // `unavailable` is the tier's own failure (its sandbox process is down), not the tenant's.
      if (isBreach(err) && !(err instanceof IsohostError && err.code === 'unavailable')) gate.noteBreach();
      throw err;
    } finally {
      gate.leaveCall();
    }
  }

  /**
   * Calls a method. `tenant` and `sub` must match the instance's, else `not_found`
   * (an instance belongs to the tenant and subject that launched it).
   */
  async call(tenant: TenantContext, sub: string | null, instanceId: string, method: string, argsJson: string, requestId?: string): Promise<string> {
    const live = this.#live.get(instanceId);
    if (live === undefined || live.tenant !== tenant || live.info.sub !== sub) {
      throw new IsohostError('not_found', 'no such instance');
    }
    const gate = this.#gate(tenant);
    await gate.enterCall();
    const limits = tenant.limits;
    const scope = new Scope(instanceId, live.info.app, live.info.version, tenant.id, requestId);
    live.calls++;
    live.info.lastUsed = Date.now();
    try {
      return await live.sandbox.call(method, argsJson, { cpuMs: limits.cpu_ms, wallMs: limits.wall_ms }, scope);
    } finally {
      // What the call logged is out before its caller has the answer (the log binding
      // writes large batches a slice per event-loop turn). Never fails the call.
      const writing = live.drained();
      if (writing !== undefined) await writing.catch(() => {});
      scope.end();
      live.calls--;
      gate.leaveCall();
    }
  }

  /** Ends an instance (idempotent for the owner; `not_found` for anyone else). */
  dispose(tenant: TenantContext, sub: string | null, instanceId: string): void {
    const live = this.#live.get(instanceId);
    if (live === undefined || live.tenant !== tenant || live.info.sub !== sub) throw new IsohostError('not_found', 'no such instance');
    live.sandbox.dispose();
    this.#forget(live);
  }

  isLive(instanceId: string): boolean {
    const live = this.#live.get(instanceId);
    return live !== undefined && !live.sandbox.ended;
  }

  /** Host-internal: ends an instance by id (one-shot reuse, eviction). */
  disposeById(instanceId: string): boolean {
    const live = this.#live.get(instanceId);
    if (live === undefined) return false;
    live.sandbox.dispose();
    this.#forget(live);
    return true;
  }

  /** Disposes instances idle for longer than `idleMs`; returns how many. */
  evictIdle(idleMs: number): number {
    const cutoff = Date.now() - idleMs;
    let n = 0;
    for (const live of this.#live.values()) {
      if (live.info.lastUsed < cutoff && live.calls === 0) {
        live.sandbox.dispose();
        this.#forget(live);
        n++;
      }
    }
    return n;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  liveByTenant(): Map<string, number> {
    const m = new Map<string, number>();
    for (const l of this.#live.values()) m.set(l.info.tenantId, (m.get(l.info.tenantId) ?? 0) + 1);
    return m;
  }

  disposeAll(): void {
    for (const live of this.#live.values()) {
      live.sandbox.dispose();
      this.#forget(live);
    }
  }

  #forget(live: Live): void {
    if (this.#live.delete(live.info.id)) this.#gate(live.tenant).releaseInstance();
  }

  #bindingsFor(tenant: TenantContext, app: AppBundle, instanceId: string): { bindings: Map<string, Binding>; drained: () => Promise<unknown> | undefined } {
    const logger = tenant.logger.child({ app: app.id, version: app.version, instance: instanceId });
    const log = logBinding(tenant, logger);
    const list: Binding[] = [storageBinding(tenant.store.app(app.id)), log, timerBinding()];
    if (this.#fetchBinding) list.push(this.#fetchBinding(tenant));
    const byOp = new Map<string, Binding>();
    for (const b of list) for (const op of b.ops) byOp.set(op, b);
    return { bindings: byOp, drained: log.drained?.bind(log) ?? (() => undefined) };
  }

  #dispatch(bindings: Map<string, Binding>, op: string, payload: unknown, bytes: ArrayBuffer | undefined, scope: Scope | undefined): Promise<Reply> {
    const binding = bindings.get(op);
    if (binding === undefined) {
      if (op === 'fetch') return Promise.reject(new IsohostError('egress_denied', 'fc.fetch is not available: this host runs without an egress proxy'));
      return Promise.reject(new IsohostError('invalid_request', `unknown platform call "${op}"`));
    }
    // The bridge hands over messages only while a call runs, with that call's scope.
    if (scope === undefined) return Promise.reject(new IsohostError('invalid_request', 'platform calls are only served while a call is running'));
    return binding.handle(op, payload, bytes, scope);
  }
}

const CALL_ENDED = Object.freeze(new Error('the call ended'));

/**
 * What bindings know of the running call. The AbortController is made only when a
 * binding asks for the signal (timers, fetch): most calls never do, and an abort
 * without a reason would build a DOMException per call (seen in the http.call profile).
 */
class Scope implements CallScope, CallTag {
  readonly instanceId: string;
  readonly appId: string;
  readonly appVersion: string;
  readonly tenantId: string;
  readonly requestId: string | undefined;
  /** Set when the call starts running (it may wait behind earlier calls of its instance). */
  deadline = Infinity;
  #controller: AbortController | undefined;
  #ended = false;

  constructor(instanceId: string, appId: string, appVersion: string, tenantId: string, requestId: string | undefined) {
    this.instanceId = instanceId;
    this.appId = appId;
    this.appVersion = appVersion;
    this.tenantId = tenantId;
    this.requestId = requestId;
  }

  started(wallEnd: number): void {
    this.deadline = wallEnd;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#ended) this.#controller.abort(CALL_ENDED);
    }
    return this.#controller.signal;
  }

  end(): void {
    this.#ended = true;
    this.#controller?.abort(CALL_ENDED);
  }
}
