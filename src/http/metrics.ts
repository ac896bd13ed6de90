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
  return { registry, calls, latency, stats: new CallStats() };
}
