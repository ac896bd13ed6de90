/**
 * Opens every configured tenant's store and builds its frozen TenantContext. This is
 * the only place that maps a tenant id to a context: the HTTP routes (after token
 * verification in that tenant's realm) and the CLI (`--tenant`) call `get(id)` once,
 * at the edge.
 */
import type { Logger } from 'pino';
import type { PlatformConfig } from '../config/schema.ts';
import type { StorageBackend } from '../storage/backend.ts';
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
      const store = await backend.open({
        namespace: t.storage.namespace,
        isolation: t.storage.isolation,
        quotaBytes: Math.floor(t.limits.storage_mb * 1024 * 1024),
      });
      byId.set(
        t.id,
        Object.freeze({ id: t.id, config: t, limits: t.limits, store, logger: logger.child({ tenant: t.id }) }),
      );
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
