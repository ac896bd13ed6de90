/**
 * The recent egress decisions per tenant, for the operator's console (issue 14): a bounded
 * ring fed by the audit (audit.ts) of a proxy running in this process. One ring per metrics
 * registry, the way `serve` shares one registry between its proxy and its API server, so the
 * admin API of a server reads the decisions of its own proxy (and several servers in one
 * test process stay apart). An external proxy (`egress_proxy.external`) is another process:
 * its decisions are in its log lines and metrics, not here.
 *
 * Metadata only: host, port, verdict, rule and reason, never a path, header or body.
 */
import type { Registry } from 'prom-client';
import type { AuditEvent } from './audit.ts';

/** Decisions kept per tenant; tenants kept (the oldest-seen tenant's ring goes first). */
export const DECISIONS_PER_TENANT = 200;
const MAX_TENANTS = 1000;

/** One decision as the console shows it. `tenant` is null for a request that named none (unauthenticated). */
export interface EgressDecision {
  time: string;
  tenant: string | null;
  app: string | null;
  host: string;
  port: number | null;
  decision: AuditEvent['decision'];
  rule: string | null;
  reason: string | null;
  ms: number;
}

export class EgressDecisions {
  readonly #byTenant = new Map<string, EgressDecision[]>();

  add(event: AuditEvent): void {
    const key = event.tenant ?? '';
    let ring = this.#byTenant.get(key);
    if (ring === undefined) {
      if (this.#byTenant.size >= MAX_TENANTS) this.#byTenant.delete(this.#byTenant.keys().next().value!);
      this.#byTenant.set(key, (ring = []));
    }
    ring.push({
      time: new Date().toISOString(),
      tenant: event.tenant,
      app: event.app,
      host: event.host.slice(0, 253),
      port: event.port,
      decision: event.decision,
      rule: event.rule,
      reason: event.reason,
      ms: Math.round(event.ms * 10) / 10,
    });
    if (ring.length > DECISIONS_PER_TENANT) ring.shift();
  }

  /** Newest first; one tenant's (`''`: requests that named no tenant), or every tenant's. */
  recent(tenant?: string, limit = DECISIONS_PER_TENANT): EgressDecision[] {
    const rings = tenant === undefined ? [...this.#byTenant.values()] : [this.#byTenant.get(tenant) ?? []];
    return rings
      .flat()
      .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
      .slice(0, limit);
  }
}

const rings = new WeakMap<Registry, EgressDecisions>();

/** The decisions recorded with `registry` (made on first use). */
export function egressDecisions(registry: Registry): EgressDecisions {
  let ring = rings.get(registry);
  if (ring === undefined) rings.set(registry, (ring = new EgressDecisions()));
  return ring;
}
