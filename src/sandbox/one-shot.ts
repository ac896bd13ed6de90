/**
 * One-shot calls reuse instances where that is safe: the same tenant, the same subject
 * (with the same verified claims) and the same app version — exactly the instances
 * that subject could have launched and called itself. Per key, up to MAX_PER_KEY instances are kept; each call goes to the
 * least-loaded one, and a new one is launched only while every kept instance is busy.
 * (Calls on one isolate run one at a time, and a 2-core host runs two isolates at once,
 * so a few instances per key carry the load; launching per call would not.) The host's
 * idle eviction ends them; a limit breach disposes one and it is dropped here.
 */
import type { TenantContext } from '../tenants/context.ts';
import type { AppBundle, InstanceHost, SessionUser } from './instance-host.ts';
import { IsohostError } from '../errors.ts';

const MAX_PER_KEY = 4;
/** Past this many keys, keys whose instances are all gone are pruned (amortised). */
const PRUNE_AT = 1024;

interface Slot {
  id: string;
  busy: number;
}

export class OneShotCaller {
  readonly #host: InstanceHost;
  readonly #byKey = new Map<string, { tenant: TenantContext; slots: Slot[]; launching: number }>();

  constructor(host: InstanceHost) {
    this.#host = host;
  }

  async call(tenant: TenantContext, app: AppBundle, user: SessionUser, method: string, argsJson: string): Promise<string> {
    // The claims are part of the key: an instance keeps the `fc.session.user` it was
    // launched with, so a newer token of the same subject (other roles) gets its own.
    const key = `${tenant.id}\u0000${user.sub}\u0000${app.id}\u0000${app.sha256}\u0000${JSON.stringify(user.claims)}`;
    let group = this.#byKey.get(key);
    if (group === undefined) {
      if (this.#byKey.size >= PRUNE_AT) this.#prune();
      this.#byKey.set(key, (group = { tenant, slots: [], launching: 0 }));
    }
    group.slots = group.slots.filter((s) => this.#host.isLive(s.id));
    let slot = leastLoaded(group.slots);
    if (slot === undefined || (slot.busy > 0 && group.slots.length + group.launching < MAX_PER_KEY)) {
      group.launching++;
      try {
        slot = { id: await this.#launch(tenant, app, user), busy: 0 };
        group.slots.push(slot);
      } catch (err) {
        slot = leastLoaded(group.slots.filter((s) => this.#host.isLive(s.id)));
        if (slot === undefined) throw err;
      } finally {
        group.launching--;
      }
    }
    slot.busy++;
    try {
      return await this.#host.call(tenant, user.sub, slot.id, method, argsJson);
    } finally {
      slot.busy--;
    }
  }

  async #launch(tenant: TenantContext, app: AppBundle, user: SessionUser): Promise<string> {
    try {
      return (await this.#host.launch(tenant, app, user)).info.id;
    } catch (err) {
      if (!(err instanceof IsohostError) || err.code !== 'resource_exhausted' || !this.#releaseIdle(tenant)) throw err;
      return (await this.#host.launch(tenant, app, user)).info.id;
    }
  }

  #prune(): void {
    for (const [key, group] of this.#byKey) {
      group.slots = group.slots.filter((s) => this.#host.isLive(s.id));
      if (group.slots.length === 0 && group.launching === 0) this.#byKey.delete(key);
    }
  }

  /** At the tenant's instance cap: frees its idle one-shot instances; true when any were freed. */
  #releaseIdle(tenant: TenantContext): boolean {
    let freed = false;
    for (const [key, group] of this.#byKey) {
      if (group.tenant !== tenant) continue;
      group.slots = group.slots.filter((s) => {
        if (s.busy > 0) return true;
        freed = this.#host.disposeById(s.id) || freed;
        return false;
      });
      if (group.slots.length === 0 && group.launching === 0) this.#byKey.delete(key);
    }
    return freed;
  }
}

function leastLoaded(slots: Slot[]): Slot | undefined {
  let best: Slot | undefined;
  for (const s of slots) if (best === undefined || s.busy < best.busy) best = s;
  return best;
}
