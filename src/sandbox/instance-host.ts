/**
 * Launches and calls instances. Its surface is message-shaped on purpose — `launch`,
 * `call(instanceId, method, argsJson)`, `dispose(instanceId)`, plain data in and out —
 * so that untrusted partners' instances can later live in a supervised sandbox process
 * behind the same interface. Host-side bindings are built here per instance, closed
 * over that instance's TenantContext; the guest never names a tenant.
 */
import { randomBytes } from 'node:crypto';
import { IsohostError } from '../errors.ts';
import type { Binding, CallScope, Reply } from '../bindings/types.ts';
import { storageBinding } from '../bindings/storage/index.ts';
import { logBinding } from '../bindings/log/index.ts';
import { timerBinding } from '../bindings/timers/index.ts';
import type { TenantContext } from '../tenants/context.ts';
import { type CallTag, launch, type SandboxInstance } from './bridge.ts';
import type { IsolatePool } from './isolate-pool.ts';
import { TenantGate } from './tenant-gate.ts';

export interface SessionUser {
  sub: string;
  claims: Record<string, unknown>;
}

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
  sandbox: SandboxInstance;
  /** Calls accepted and not yet ended (running or queued in the sandbox). */
  calls: number;
  /** Set once the instance was lost to a limit breach, so the tenant's budget counts it once. */
  breached: boolean;
}

export interface InstanceHostOptions {
  pool: IsolatePool;
  fetchBinding?: FetchBindingFactory;
}

export class InstanceHost {
  readonly #pool: IsolatePool;
  readonly #fetchBinding: FetchBindingFactory | undefined;
  readonly #live = new Map<string, Live>();
  readonly #gates = new WeakMap<TenantContext, TenantGate>();

  constructor(options: InstanceHostOptions) {
    this.#pool = options.pool;
    this.#fetchBinding = options.fetchBinding;
  }

  #gate(tenant: TenantContext): TenantGate {
    let g = this.#gates.get(tenant);
    if (g === undefined) this.#gates.set(tenant, (g = new TenantGate(tenant.limits)));
    return g;
  }

  /** Launches `app` for `tenant` and `user`; the isolate is bound to them for its whole life. */
  async launch(tenant: TenantContext, app: AppBundle, user: SessionUser | null): Promise<{ info: InstanceInfo; warm: boolean }> {
    const gate = this.#gate(tenant);
    gate.reserveInstance();
    const id = 'i_' + randomBytes(18).toString('base64url');
    const live = { calls: 0, breached: false } as Live;
    let sandbox: SandboxInstance;
    let warm: boolean;
    try {
      // Inside the try: a failed cold isolate creation must give the reserved slot back too.
      const taken = this.#pool.take(tenant.limits.memory_mb);
      warm = taken.warm;
      const bindings = this.#bindingsFor(tenant, app, id);
      sandbox = launch(taken.blank, {
        source: app.source,
        sha256: app.sha256,
        metaJson: JSON.stringify({ app: { id: app.id, version: app.version }, user }),
        label: `${tenant.id}/${app.id}@${app.version}/${id}`,
        cpuMs: tenant.limits.cpu_ms,
        onMessage: (op, payload, bytes, tag) => this.#dispatch(bindings, op, payload, bytes, tag as Scope | undefined),
      });
    } catch (err) {
      gate.releaseInstance();
      throw err;
    }
    const info: InstanceInfo = { id, tenantId: tenant.id, app: app.id, version: app.version, sub: user?.sub ?? null, methods: sandbox.methods, lastUsed: Date.now() };
    Object.assign(live, { info, tenant, sandbox });
    this.#live.set(id, live);
    return { info, warm };
  }

  /**
   * Calls a method. `tenant` and `sub` must match the instance's, else `not_found`
   * (an instance belongs to the tenant and subject that launched it).
   */
  async call(tenant: TenantContext, sub: string | null, instanceId: string, method: string, argsJson: string): Promise<string> {
    const live = this.#live.get(instanceId);
    if (live === undefined || live.tenant !== tenant || live.info.sub !== sub) {
      throw new IsohostError('not_found', 'no such instance');
    }
    const gate = this.#gate(tenant);
    await gate.enterCall();
    const limits = tenant.limits;
    const scope = new Scope(instanceId, live.info.app, live.info.version, tenant.id);
    live.calls++;
    live.info.lastUsed = Date.now();
    try {
      return await live.sandbox.call(method, argsJson, { cpuMs: limits.cpu_ms, wallMs: limits.wall_ms }, scope);
    } catch (err) {
      // A breach disposed the isolate: count it against the tenant's breach budget, once
      // (the calls queued behind the culprit fail with the same error).
      if (live.sandbox.disposed && !live.breached && err instanceof IsohostError && (err.code === 'timeout' || err.code === 'resource_exhausted')) {
        live.breached = true;
        gate.noteBreach();
      }
      throw err;
    } finally {
      scope.end();
      live.calls--;
      gate.leaveCall();
      if (live.sandbox.disposed) this.#forget(live);
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
    return live !== undefined && !live.sandbox.disposed;
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

  #bindingsFor(tenant: TenantContext, app: AppBundle, instanceId: string): Map<string, Binding> {
    const logger = tenant.logger.child({ app: app.id, version: app.version, instance: instanceId });
    const list: Binding[] = [storageBinding(tenant.store.app(app.id)), logBinding(tenant, logger), timerBinding()];
    if (this.#fetchBinding) list.push(this.#fetchBinding(tenant));
    const byOp = new Map<string, Binding>();
    for (const b of list) for (const op of b.ops) byOp.set(op, b);
    return byOp;
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
  /** Set when the call starts running (it may wait behind earlier calls of its instance). */
  deadline = Infinity;
  #controller: AbortController | undefined;
  #ended = false;

  constructor(instanceId: string, appId: string, appVersion: string, tenantId: string) {
    this.instanceId = instanceId;
    this.appId = appId;
    this.appVersion = appVersion;
    this.tenantId = tenantId;
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
