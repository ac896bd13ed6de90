/**
 * Opens every configured tenant's store and builds its frozen TenantContext. This is
 * the only place that maps a tenant id to a context: the HTTP routes (after token
 * verification in that tenant's realm) and the CLI (`--tenant`) call `get(id)` once,
 * at the edge.
 */
import type { Logger } from 'pino';
import type { PlatformConfig, TenantConfig } from '../config/schema.ts';
import type { StorageBackend, TenantStore } from '../storage/backend.ts';
import { unavailableTenantStore } from '../storage/unavailable-store.ts';
import type { TenantContext } from './context.ts';
import { IsohostError } from '../errors.ts';

/** What a new config changes, tenant by tenant (`serve` on SIGHUP). */
export interface TenantChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
}

export class TenantRegistry {
  #byId: Map<string, TenantContext>;
  readonly #backend: StorageBackend;
  readonly #logger: Logger;

  private constructor(byId: Map<string, TenantContext>, backend: StorageBackend, logger: Logger) {
    this.#byId = byId;
    this.#backend = backend;
    this.#logger = logger;
  }

  static async open(config: PlatformConfig, backend: StorageBackend, logger: Logger): Promise<TenantRegistry> {
    const byId = new Map<string, TenantContext>();
    for (const t of config.tenants) byId.set(t.id, await openContext(backend, t, logger));
    return new TenantRegistry(byId, backend, logger);
  }

  /**
   * Moves to a new, validated config's tenants. A tenant whose config is identical keeps
   * its context, so its instances and in-flight calls go on untouched. An added tenant
   * gets a store and a context; a changed one a new context (its storage location may
   * not change: that would move data, so the reload is refused before anything changes);
   * a removed one is gone for new requests. Instances launched under a replaced or
   * removed context are unreachable from then on (`not_found`; an instance belongs to the
   * context that launched it) and end by idle eviction after their in-flight calls.
   */
  async reconfigure(config: PlatformConfig): Promise<TenantChanges> {
    const changes = planTenantChanges(this.all().map((c) => c.config), config.tenants);
    for (const id of changes.changed) {
      const before = this.#byId.get(id)!.config.storage;
      const after = config.tenants.find((t) => t.id === id)!.storage;
      if (before.namespace !== after.namespace || before.isolation !== after.isolation) {
        throw new IsohostError('config_invalid', `tenants: "${id}" changes storage.namespace or storage.isolation; that moves data and needs an export, a restart and an import`);
      }
    }
    const next = new Map<string, TenantContext>();
    for (const t of config.tenants) {
      const current = this.#byId.get(t.id);
      if (current !== undefined && changes.unchanged.includes(t.id)) next.set(t.id, current);
      else {
        const ctx = await openContext(this.#backend, t, this.#logger);
        if (current !== undefined) ctx.store.setQuotaBytes(quotaOf(t)); // the store is shared by namespace: same object
        next.set(t.id, ctx);
      }
    }
    this.#byId = next;
    return changes;
  }

  /** The context of a configured tenant, or `not_found`. */
  get(id: string): TenantContext {
    const ctx = this.#byId.get(id);
    if (ctx === undefined) throw new IsohostError('not_found', `no tenant "${String(id).slice(0, 64)}"`);
    return ctx;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  all(): TenantContext[] {
    return [...this.#byId.values()];
  }
}

/** Compares two tenant lists by id and by their whole (validated) config. */
export function planTenantChanges(before: readonly TenantConfig[], after: readonly TenantConfig[]): TenantChanges {
  const old = new Map(before.map((t) => [t.id, JSON.stringify(t)]));
  const added: string[] = [];
  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const t of after) {
    const was = old.get(t.id);
    if (was === undefined) added.push(t.id);
    else if (was === JSON.stringify(t)) unchanged.push(t.id);
    else changed.push(t.id);
  }
  const ids = new Set(after.map((t) => t.id));
  return { added, removed: before.filter((t) => !ids.has(t.id)).map((t) => t.id), changed, unchanged };
}

function quotaOf(t: TenantConfig): number {
  return Math.floor(t.limits.storage_mb * 1024 * 1024);
}

async function openContext(backend: StorageBackend, t: TenantConfig, logger: Logger): Promise<TenantContext> {
  const tenantLogger = logger.child({ tenant: t.id });
  const store = await openStore(backend, t, tenantLogger);
  return Object.freeze({ id: t.id, config: t, limits: t.limits, store, logger: tenantLogger });
}

/**
 * Opens one tenant's store. A tenant with a database of its own that cannot be opened
 * (corrupt, unreadable) must not take the other tenants down with it (THREATS E39): it
 * gets a store whose every operation fails with the same coded storage_error, and the
 * host starts. A lock held by another process stays fatal — that is another isohost on
 * the same data_dir, which must not start — and so does a failure of the shared store.
 */
async function openStore(backend: StorageBackend, t: TenantConfig, logger: Logger): Promise<TenantStore> {
  try {
    return await backend.open({
      namespace: t.storage.namespace,
      isolation: t.storage.isolation,
      quotaBytes: quotaOf(t),
    });
  } catch (err) {
    if (t.storage.isolation !== 'database' || !(err instanceof IsohostError) || err.code !== 'storage_error' || err.details?.reason === 'locked') throw err;
    logger.error({ err, code: err.code }, 'tenant store cannot be opened; this tenant fails with storage_error until it is repaired and the host restarted');
    return unavailableTenantStore('database', err);
  }
}
