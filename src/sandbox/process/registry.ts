/**
 * The process tiers of one platform: one ProcessTier per `compute: process` tenant,
 * started with the platform (so each has a warm sandbox before its first launch), moved
 * along on a config reload, closed with the platform. Also the two things ops reads from
 * them: the `sandbox` field of /readyz and `isohost_sandbox_crashes_total`.
 */
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { PlatformConfig, TenantConfig } from '../../config/schema.ts';
import { IsohostError } from '../../errors.ts';
import type { TenantContext } from '../../tenants/context.ts';
import { ProcessTier, type ProcessTierStatus } from '../process-tier.ts';
import type { SandboxTier } from '../tier.ts';

export interface ProcessTierRegistryOptions {
  logger: Logger;
  /** Blank isolates each sandbox process keeps warm (deployment.warm_pool, at least 1). */
  warm: number;
  dataDir: string;
  /** A process tenant's sandbox crashed for a cause its own code can bring about (ProcessTier onTenantCrash). */
  onTenantCrash?(tenantId: string, cause: string): void;
}

export class ProcessTierRegistry {
  readonly #o: ProcessTierRegistryOptions;
  readonly #tiers = new Map<string, ProcessTier>();
  /** The tenant config each tier was made from: a reload that changes its planKey replaces the tier. */
  readonly #madeFrom = new Map<string, TenantConfig>();
  /** Tiers replaced on a reload, until their in-flight calls are over (#retire). */
  readonly #retiring = new Map<ProcessTier, NodeJS.Timeout>();
  /** uid slots: a tenant keeps the slot it got first, so two tenants never share a uid across reloads. */
  readonly #slots = new Map<string, number>();

  constructor(config: PlatformConfig, options: ProcessTierRegistryOptions) {
    this.#o = options;
    config.tenants.forEach((t, i) => this.#slots.set(t.id, i));
    this.#sync(config);
  }

  /**
   * The process tier of `tenant`, or undefined when it runs in the shared tier. A
   * process tenant never falls back to the shared tier: without its tier it is refused.
   */
  tierFor(tenant: TenantContext): SandboxTier | undefined {
    if (tenant.config.compute.isolation !== 'process') return undefined;
    const tier = this.#tiers.get(tenant.id);
    if (tier === undefined) throw new IsohostError('unavailable', "the tenant's sandbox is not running");
    return tier;
  }

  /** The tier of a process tenant by id (tests, bench, ops). */
  get(tenantId: string): ProcessTier | undefined {
    return this.#tiers.get(tenantId);
  }

  /**
   * After a config reload: tiers for new process tenants, closed tiers for the ones gone
   * or moved to `shared`, and a new tier for one whose limits or `compute.priority`
   * changed (its sandbox processes' caps and priority come from them).
   */
  async reconfigure(next: PlatformConfig): Promise<void> {
    for (const t of next.tenants) if (!this.#slots.has(t.id)) this.#slots.set(t.id, Math.max(-1, ...this.#slots.values()) + 1);
    await this.#sync(next);
  }

  /** Per process tenant: state, pids, active and missing protections (`/readyz`). */
  status(): Record<string, ProcessTierStatus> {
    const out: Record<string, ProcessTierStatus> = {};
    for (const [id, tier] of this.#tiers) out[id] = tier.status();
    return out;
  }

  async close(): Promise<void> {
    const tiers = [...this.#tiers.values(), ...this.#retiring.keys()];
    for (const timer of this.#retiring.values()) clearTimeout(timer);
    this.#retiring.clear();
    this.#tiers.clear();
    this.#madeFrom.clear();
    await Promise.all(tiers.map((t) => t.close()));
  }

  /**
   * Registers `isohost_sandbox_crashes_total{tenant,cause}` on a server's registry.
   * Cause: the signal (`sigkill`, `sigsegv`, `sigabrt` — a fatal V8 OOM aborts), `exit_N`,
   * `spawn_failed`, or what the host killed it for: `unresponsive`, `start_timeout`,
   * `protocol`, `privileges`.
   */
  registerMetrics(registry: Registry): void {
    const tiers = this.#tiers;
    new Counter({
      name: 'isohost_sandbox_crashes_total',
      help: 'Sandbox processes of process tenants that ended unasked, by tenant and cause',
      labelNames: ['tenant', 'cause'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [tenant, tier] of tiers) for (const [cause, n] of tier.crashes()) this.inc({ tenant, cause }, n);
      },
    });
  }

  #sync(config: PlatformConfig): Promise<void> {
    const wanted = new Map(config.tenants.filter((t) => t.compute.isolation === 'process').map((t) => [t.id, t]));
    const closing: Promise<void>[] = [];
    for (const [id, tier] of this.#tiers) {
      const t = wanted.get(id);
      const was = this.#madeFrom.get(id)!;
      if (t !== undefined && planKey(was) === planKey(t)) continue;
      this.#tiers.delete(id);
      this.#madeFrom.delete(id);
      // Changed: the tenant's new context reaches none of the old tier's instances, whose
      // calls in flight end within the old wall_ms; then the old tier closes (a call still
      // queued behind others on an old instance by then ends with an error).
      if (t !== undefined) this.#retire(tier, was.limits.wall_ms);
      else closing.push(tier.close());
    }
    for (const [id, t] of wanted) {
      if (this.#tiers.has(id)) continue;
      const tier = new ProcessTier({
        tenantId: id,
        index: this.#slots.get(id)!,
        limits: t.limits,
        warm: this.#o.warm,
        priority: t.compute.priority ?? 'low',
        dataDir: this.#o.dataDir,
        logger: this.#o.logger.child({ component: 'sandbox' }),
        onTenantCrash: (cause) => this.#o.onTenantCrash?.(id, cause),
      });
      this.#tiers.set(id, tier);
      this.#madeFrom.set(id, t);
      tier.start();
    }
    return Promise.all(closing).then(() => {});
  }

  /** Closes a replaced tier once every call it may still run is over: its tenant's wall_ms, and a second for the answers. */
  #retire(tier: ProcessTier, wallMs: number): void {
    const timer = setTimeout(() => {
      this.#retiring.delete(tier);
      void tier.close();
    }, wallMs + RETIRE_GRACE_MS);
    timer.unref();
    this.#retiring.set(tier, timer);
  }
}

/** Time past wall_ms for a retired tier's last calls to answer before it closes. */
const RETIRE_GRACE_MS = 1000;

/** What a tier is made from: a reload that changes any of it gives the tenant a new tier. */
function planKey(t: TenantConfig): string {
  const { memory_mb, instances, concurrency } = t.limits;
  return JSON.stringify([memory_mb, instances, concurrency, t.compute.priority ?? 'low']);
}
