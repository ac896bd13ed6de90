/**
 * The egress audit trail: one pino line per decision and Prometheus metrics on an
 * injected registry (no global registry: several proxies may live in one test process).
 * The credential never appears here; only the claims derived from it.
 */
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { egressDecisions } from './decision-ring.ts';

export type Verdict = 'allow' | 'deny' | 'error' | 'unauthenticated';

export interface AuditEvent {
  tenant: string | null;
  app: string | null;
  instance: string | null;
  method: string;
  /** Normalised host (or the raw target, truncated, when it did not parse). */
  host: string;
  port: number | null;
  /** The address connected to, or the DNS answers that caused a denial. */
  ip: string | readonly string[] | null;
  decision: Verdict;
  rule: string | null;
  reason: string | null;
  bytesUp: number;
  bytesDown: number;
  ms: number;
}

export type Audit = (event: AuditEvent) => void;

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * @example
 * const audit = createAudit(pino(), new Registry());
 * audit({ tenant: 'bu-a', decision: 'deny', reason: 'no rule matches', … });
 */
export function createAudit(logger: Logger, registry?: Registry): Audit {
  const metrics = registry && {
    decisions: metric(registry, 'isohost_egress_decisions_total', () => new Counter({
      name: 'isohost_egress_decisions_total',
      help: 'Egress proxy decisions by tenant and verdict (allow, deny, error, unauthenticated).',
      labelNames: ['tenant', 'decision'] as const,
      registers: [registry],
    })),
    bytes: metric(registry, 'isohost_egress_bytes_total', () => new Counter({
      name: 'isohost_egress_bytes_total',
      help: 'Bytes relayed by the egress proxy, by tenant and direction (up = to the upstream).',
      labelNames: ['tenant', 'direction'] as const,
      registers: [registry],
    })),
    duration: metric(registry, 'isohost_egress_duration_seconds', () => new Histogram({
      name: 'isohost_egress_duration_seconds',
      help: 'Time from request to end of relay (allowed) or to the answer (denied).',
      labelNames: ['tenant', 'decision'] as const,
      buckets: [0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30],
      registers: [registry],
    })),
  };
  // The console's recent decisions (decision-ring.ts), kept beside the metrics of the same registry.
  const recent = registry && egressDecisions(registry);
  return (event) => {
    recent?.add(event);
    const line = { evt: 'egress', ...event, ms: Math.round(event.ms * 10) / 10 };
    if (event.decision === 'allow') logger.info(line, 'egress allowed');
    else logger.warn(line, `egress ${event.decision}`);
    if (!metrics) return;
    const tenant = event.tenant ?? '(none)';
    metrics.decisions.inc({ tenant, decision: event.decision });
    if (event.bytesUp > 0) metrics.bytes.inc({ tenant, direction: 'up' }, event.bytesUp);
    if (event.bytesDown > 0) metrics.bytes.inc({ tenant, direction: 'down' }, event.bytesDown);
    metrics.duration.observe({ tenant, decision: event.decision }, event.ms / 1000);
  };
}
