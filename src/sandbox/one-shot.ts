/**
 * One-shot calls reuse idle instances where that is safe: the same tenant, the same
 * subject and the same app version — exactly the instances that subject could have
 * launched and called itself. A few idle ones are kept per key; the host's idle
 * eviction ends them.
 */
import type { TenantContext } from '../tenants/context.ts';
import type { AppBundle, InstanceHost, SessionUser } from './instance-host.ts';
import { IsohostError } from '../errors.ts';

const KEEP_PER_KEY = 4;

export class OneShotCaller {
  readonly #host: InstanceHost;
  readonly #idle = new Map<string, string[]>();
  readonly #keyTenant = new Map<string, TenantContext>();

  constructor(host: InstanceHost) {
    this.#host = host;
  }

  async call(tenant: TenantContext, app: AppBundle, user: SessionUser, method: string, argsJson: string): Promise<string> {
    const key = `${tenant.id}\u0000${user.sub}\u0000${app.id}\u0000${app.sha256}`;
    const idle = this.#idle.get(key);
    let id = idle?.pop();
    if (id === undefined) id = await this.#launch(tenant, app, user);
    try {
      const result = await this.#host.call(tenant, user.sub, id, method, argsJson);
      this.#park(key, tenant, id);
      return result;
    } catch (err) {
      // A limit breach disposed the instance; a mini-app error leaves it usable.
      if (err instanceof IsohostError && (err.code === 'miniapp_error' || err.code === 'not_found')) this.#park(key, tenant, id);
      throw err;
    }
  }

  async #launch(tenant: TenantContext, app: AppBundle, user: SessionUser): Promise<string> {
    try {
      return (await this.#host.launch(tenant, app, user)).info.id;
    } catch (err) {
      if (!(err instanceof IsohostError) || err.code !== 'resource_exhausted' || !this.#release(tenant)) throw err;
      return (await this.#host.launch(tenant, app, user)).info.id;
    }
  }

  #park(key: string, tenant: TenantContext, id: string): void {
    if (!this.#host.isLive(id)) return;
    let list = this.#idle.get(key);
    if (list === undefined) {
      this.#idle.set(key, (list = []));
      this.#keyTenant.set(key, tenant);
    }
    if (list.length < KEEP_PER_KEY) list.push(id);
    else this.#host.disposeById(id);
  }

  /** Frees this tenant's parked instances (at its instance cap); true when any were freed. */
  #release(tenant: TenantContext): boolean {
    let freed = false;
    for (const [key, list] of this.#idle) {
      if (this.#keyTenant.get(key) !== tenant) continue;
      for (const id of list) freed = this.#host.disposeById(id) || freed;
      this.#idle.delete(key);
      this.#keyTenant.delete(key);
    }
    return freed;
  }
}
