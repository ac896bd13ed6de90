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

export class TenantRegistry {
  readonly #byId: Map<string, TenantContext>;

  private constructor(byId: Map<string, TenantContext>) {
    this.#byId = byId;
  }

  static async open(config: PlatformConfig, backend: StorageBackend, logger: Logger): Promise<TenantRegistry> {
    const byId = new Map<string, TenantContext>();
    for (const t of config.tenants) {
      const tenantLogger = logger.child({ tenant: t.id });
      const store = await openStore(backend, t, tenantLogger);
      byId.set(t.id, Object.freeze({ id: t.id, config: t, limits: t.limits, store, logger: tenantLogger }));
    }
    return new TenantRegistry(byId);
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
      quotaBytes: Math.floor(t.limits.storage_mb * 1024 * 1024),
    });
  } catch (err) {
    if (t.storage.isolation !== 'database' || !(err instanceof IsohostError) || err.code !== 'storage_error' || err.details?.reason === 'locked') throw err;
    logger.error({ err, code: err.code }, 'tenant store cannot be opened; this tenant fails with storage_error until it is repaired and the host restarted');
    return unavailableTenantStore('database', err);
  }
}
