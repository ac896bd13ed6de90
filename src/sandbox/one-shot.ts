/**
 * One-shot calls reuse instances where that is safe: the same tenant, the same subject
 * (with the same verified claims) and the same app version — exactly the instances
 * that subject could have launched and called itself. Per key, up to MAX_PER_KEY
 * instances are kept; the host's idle eviction ends them, and one a limit breach
 * disposed is dropped here.
 *
 * Which instance takes a call: the first (oldest) whose expected wait is under
 * WAIT_BUDGET_MS — its calls in progress times the key's measured time per call — else
 * a new instance while fewer than MAX_PER_KEY exist, else the least loaded. Packing
 * fast calls onto one instance is what makes them cheap: calls that wait behind a busy
 * instance go into the isolate together, one round trip for the group (bridge.ts). Slow
 * calls (awaiting fetch, say) exceed the budget at once and spread, as they must: calls
 * on one instance run one at a time. (http.call on the 2-core bench box, calls grouped
 * per round trip, two runs each: spread over 4 instances 7.4–8.7k rps, all on one
 * 9.1–12.8k, bare fastify ~25k.)
 */
import type { TenantContext } from '../tenants/context.ts';
import type { AppBundle, InstanceHost, SessionUser } from './instance-host.ts';
import { IsohostError } from '../errors.ts';

const MAX_PER_KEY = 4;
const WAIT_BUDGET_MS = 4;
/** Weight of the newest sample in the key's time-per-call average. */
const EWMA = 0.2;
/** Past this many keys, keys whose instances are all gone are pruned (amortised). */
const PRUNE_AT = 1024;

export interface OneShotOptions {
  /** How long a call may be expected to wait behind a busy instance. Default WAIT_BUDGET_MS. */
  waitBudgetMs?: number;
}

interface Slot {
  id: string;
  busy: number;
}

interface Group {
  tenant: TenantContext;
  slots: Slot[];
  /** Launches under way for this key; each resolves with its slot (already in `slots`). */
  launches: Set<Promise<Slot>>;
  /** Time per call on this key's instances, ms: a call's latency over the calls it shared its instance with. Unknown until a call ended. */
  perCallMs: number | undefined;
}

export class OneShotCaller {
  readonly #host: InstanceHost;
  readonly #byKey = new Map<string, Group>();

  readonly #waitBudgetMs: number;

  constructor(host: InstanceHost, options: OneShotOptions = {}) {
    this.#host = host;
    this.#waitBudgetMs = options.waitBudgetMs ?? WAIT_BUDGET_MS;
  }

  async call(tenant: TenantContext, app: AppBundle, user: SessionUser, method: string, argsJson: string, requestId?: string): Promise<string> {
    // The claims are part of the key: an instance keeps the `fc.session.user` it was
    // launched with, so a newer token of the same subject (other roles) gets its own.
    const key = `${tenant.id}\u0000${user.sub}\u0000${app.id}\u0000${app.sha256}\u0000${claimsKey(user)}`;
    let group = this.#byKey.get(key);
    // A reloaded config gave the tenant a new context: the old group's instances belong to
    // the old one (not_found under the new), so start afresh; idle eviction ends them.
    if (group === undefined || group.tenant !== tenant) {
      if (this.#byKey.size >= PRUNE_AT) this.#prune();
      this.#byKey.set(key, (group = { tenant, slots: [], launches: new Set(), perCallMs: undefined }));
    }
    // Only the instance picked is checked for life (a check per instance per call showed in
    // http.call profiles); finding it ended drops the key's ended ones and picks again.
    let slot = firstFit(group, this.#waitBudgetMs);
    if (slot !== undefined && !this.#host.isLive(slot.id)) {
      this.#dropEnded(group);
      slot = firstFit(group, this.#waitBudgetMs);
    }
    // At the cap, share the least loaded instance — or, while the key's first instances are
    // still launching (a launch takes a thread round trip), wait for one of them: a burst of
    // callers must not each start an instance of its own. Ended instances must not count
    // against the cap: the slots are checked before it is applied.
    if (slot === undefined) {
      this.#dropEnded(group);
      if (group.slots.length + group.launches.size >= MAX_PER_KEY) {
        slot = leastLoaded(group.slots) ?? (await Promise.race(group.launches).catch(() => undefined));
      }
    }
    if (slot === undefined) {
      const g = group;
      const launching = this.#launch(tenant, app, user).then((id) => {
        const s: Slot = { id, busy: 0 };
        g.slots.push(s);
        return s;
      });
      g.launches.add(launching);
      try {
        slot = await launching;
      } catch (err) {
        slot = leastLoaded(g.slots.filter((s) => this.#host.isLive(s.id)));
        if (slot === undefined) throw err;
      } finally {
        g.launches.delete(launching);
      }
    }
    const sharedWith = slot.busy++;
    const t0 = performance.now();
    try {
      return await this.#host.call(tenant, user.sub, slot.id, method, argsJson, requestId);
    } finally {
      slot.busy--;
      const sample = (performance.now() - t0) / (sharedWith + 1);
      group.perCallMs = group.perCallMs === undefined ? sample : group.perCallMs + EWMA * (sample - group.perCallMs);
    }
  }

  #dropEnded(group: Group): void {
    if (!group.slots.every((s) => this.#host.isLive(s.id))) group.slots = group.slots.filter((s) => this.#host.isLive(s.id));
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
      if (group.slots.length === 0 && group.launches.size === 0) this.#byKey.delete(key);
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
      if (group.slots.length === 0 && group.launches.size === 0) this.#byKey.delete(key);
    }
    return freed;
  }
}

/** The claims as key text, once per user object (the HTTP layer reuses one per verified token). */
const claimsKeys = new WeakMap<SessionUser, string>();
function claimsKey(user: SessionUser): string {
  let key = claimsKeys.get(user);
  if (key === undefined) claimsKeys.set(user, (key = JSON.stringify(user.claims)));
  return key;
}

/** The oldest instance that is idle, or whose calls in progress should be done within the wait budget. */
function firstFit(group: Group, budgetMs: number): Slot | undefined {
  const perCall = group.perCallMs;
  for (const s of group.slots) if (s.busy === 0 || (perCall !== undefined && s.busy * perCall < budgetMs)) return s;
  return undefined;
}

function leastLoaded(slots: Slot[]): Slot | undefined {
  let best: Slot | undefined;
  for (const s of slots) if (best === undefined || s.busy < best.busy) best = s;
  return best;
}
