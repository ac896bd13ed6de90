/**
 * Prometheus metrics (prom-client), one registry per server: calls and errors by
 * tenant, app and code, call latency by tenant and app, live instances, warm pool size,
 * storage bytes. App ids are bounded per tenant by the operator's deployments, so the
 * label set stays small.
 * Egress decisions are counted on the same registry by the egress audit.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Platform } from '../platform.ts';
import { droppedLogLines } from '../bindings/log/index.ts';
import { CallStats } from './stats.ts';

export interface HttpMetrics {
  registry: Registry;
  calls: Counter<'tenant' | 'app' | 'code'>;
  latency: Histogram<'tenant' | 'app'>;
  /** The last hour of calls per tenant and app, for the operator's console (stats.ts). */
  stats: CallStats;
  /**
   * Counts one ended call in `calls` and `latency`. The label objects are made once per
   * (tenant, app, code), not per call: a call's route does no label spreading.
   *
   * @example
   * metrics.countCall('acme', 'shop', 'ok', 2.5); // isohost_calls_total{…,code="ok"} + 1, latency 2.5 ms observed
   */
  countCall(tenant: string, app: string, code: string, ms: number): void;
}

/** The label objects of one (tenant, app): the latency's, and the counter's per result code. */
interface AppLabels {
  latency: { tenant: string; app: string };
  byCode: Map<string, { tenant: string; app: string; code: string }>;
}

export function createMetrics(platform: Platform, registry = new Registry()): HttpMetrics {
  collectDefaultMetrics({ register: registry, prefix: 'isohost_process_' });
  const calls = new Counter({ name: 'isohost_calls_total', help: 'Mini-app calls by tenant, app and result code', labelNames: ['tenant', 'app', 'code'], registers: [registry] });
  const latency = new Histogram({
    name: 'isohost_call_duration_seconds',
    help: 'Mini-app call latency (HTTP, including launch for one-shot calls)',
    labelNames: ['tenant', 'app'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'isohost_live_instances',
    help: 'Live instances by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of platform.tenants.all()) this.set({ tenant: t.id }, 0);
      for (const [tenant, n] of platform.host.liveByTenant()) this.set({ tenant }, n);
    },
  });
  new Gauge({
    name: 'isohost_warm_pool_size',
    help: 'Blank isolates ready in the warm pool',
    registers: [registry],
    collect() {
      this.set(platform.pool.size);
    },
  });
  new Gauge({
    name: 'isohost_storage_bytes',
    help: 'Bytes of keys and values stored, by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    collect() {
      for (const t of platform.tenants.all()) this.set({ tenant: t.id }, t.store.usageBytes());
    },
  });
  new Counter({
    name: 'isohost_log_lines_dropped_total',
    help: 'Mini-app log lines dropped by the per-call limit or the tenant log rate, by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of platform.tenants.all()) this.inc({ tenant: t.id }, droppedLogLines(t));
    },
  });
  platform.sandboxes.registerMetrics(registry);
  // Bounded like the label sets themselves: tenants × their deployed apps (codes: the error table).
  const labelsOf = new Map<string, Map<string, AppLabels>>();
  function appLabels(tenant: string, app: string): AppLabels {
    let apps = labelsOf.get(tenant);
    if (apps === undefined) labelsOf.set(tenant, (apps = new Map()));
    let l = apps.get(app);
    if (l === undefined) apps.set(app, (l = { latency: { tenant, app }, byCode: new Map() }));
    return l;
  }
  return {
    registry,
    calls,
    latency,
    stats: new CallStats(),
    countCall(tenant, app, code, ms) {
      const l = appLabels(tenant, app);
      let counted = l.byCode.get(code);
      if (counted === undefined) l.byCode.set(code, (counted = { tenant, app, code }));
      calls.inc(counted);
      latency.observe(l.latency, ms / 1000);
    },
  };
}
