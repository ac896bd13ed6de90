/**
 * Per-tenant, per-app call statistics for the operator's console (issue 14): one bucket per
 * minute over the last hour (calls, errors, limit breaches, a latency histogram), and the
 * recent errors with where in the bundle they were thrown. Fed where call outcomes are
 * counted (routes/instances.ts); read by the admin API (routes/admin*.ts).
 *
 * Metadata only, on purpose: an outcome is its code, time, app, version, method and bundle
 * line. No error message is kept: a mini-app's message may carry its arguments or stored
 * values, which the console must never show (issue 14 §3).
 *
 * Bounded: 60 buckets of 64 latency bins per (tenant, app), and RECENT_ERRORS errors per
 * (tenant, app). App ids are bounded per tenant by its deployments (metrics.ts says the same).
 */

const MINUTE_MS = 60_000;
/** Minutes kept: the console shows the last 5 and the last 60. */
export const WINDOW_MINUTES = 60;
/** Latency bins: bin i holds times up to FIRST_BIN_MS × GROWTH^i (≈ 25 % wide; 64 bins reach beyond 60 s). */
const BINS = 64;
const FIRST_BIN_MS = 0.05;
const GROWTH = 1.25;
export const RECENT_ERRORS = 50;

/** Codes that are limit breaches (instance-host.ts isLimitBreach: CPU, wall time, memory, rate, breach budget). */
const BREACH_CODES = new Set(['timeout', 'resource_exhausted']);

interface Bucket {
  minute: number;
  calls: number;
  errors: number;
  breaches: number;
  bins: Uint32Array;
}

/** One failed call, as the console shows it. */
export interface RecentError {
  time: string;
  app: string;
  version: string;
  method: string;
  code: string;
  request_id: string;
  /** The bundle line the error was thrown at, when the isolate reported one. */
  line?: number;
  /** The author's file and line, from the bundle's own source map. */
  file?: string;
  file_line?: number;
}

/** Calls over a span of minutes. Latencies in milliseconds (upper bound of their 25 % bin); null without calls. */
export interface CallSummary {
  calls: number;
  errors: number;
  breaches: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

/** One minute of the chart. `t` is the minute's start (epoch ms). */
export interface MinutePoint extends CallSummary {
  t: number;
}

/** What a call route reports when a call ends. */
export interface CallOutcome {
  tenant: string;
  app: string;
  version: string;
  method: string;
  /** `ok` or the error code. */
  outcome: string;
  ms: number;
  requestId: string;
  /** What was thrown: only its code and bundle position (IsohostError details) are read. */
  error?: unknown;
}

class Series {
  readonly buckets: (Bucket | undefined)[] = new Array(WINDOW_MINUTES);
  readonly errors: RecentError[] = [];

  bucket(minute: number): Bucket {
    const slot = minute % WINDOW_MINUTES;
    let b = this.buckets[slot];
    if (b === undefined || b.minute !== minute) this.buckets[slot] = b = { minute, calls: 0, errors: 0, breaches: 0, bins: new Uint32Array(BINS) };
    return b;
  }
}

function binOf(ms: number): number {
  if (!(ms > FIRST_BIN_MS)) return 0;
  return Math.min(BINS - 1, Math.ceil(Math.log(ms / FIRST_BIN_MS) / Math.log(GROWTH)));
}

function binUpperMs(bin: number): number {
  return Math.round(FIRST_BIN_MS * GROWTH ** bin * 1000) / 1000;
}

function quantile(bins: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += bins[i]!;
    if (seen >= rank) return binUpperMs(i);
  }
  return binUpperMs(BINS - 1);
}

function summarize(buckets: Bucket[]): CallSummary {
  const bins = new Uint32Array(BINS);
  let calls = 0;
  let errors = 0;
  let breaches = 0;
  for (const b of buckets) {
    calls += b.calls;
    errors += b.errors;
    breaches += b.breaches;
    for (let i = 0; i < BINS; i++) bins[i]! += b.bins[i]!;
  }
  return { calls, errors, breaches, p50_ms: quantile(bins, calls, 0.5), p99_ms: quantile(bins, calls, 0.99) };
}

/** A number from an error's details, or undefined. */
function detail(error: unknown, key: string): unknown {
  const details = (error as { details?: Record<string, unknown> } | null)?.details;
  return details === undefined || details === null ? undefined : details[key];
}

/**
 * @example
 * const stats = new CallStats();
 * stats.record({ tenant: 'acme', app: 'shop', version, method: 'buy', outcome: 'ok', ms: 3.2, requestId });
 * stats.summary('acme', undefined, 5); // { calls: 1, errors: 0, breaches: 0, p50_ms: 3.4, p99_ms: 3.4 }
 */
export class CallStats {
  /** tenant -> app -> series. */
  readonly #tenants = new Map<string, Map<string, Series>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  record(o: CallOutcome): void {
    let apps = this.#tenants.get(o.tenant);
    if (apps === undefined) this.#tenants.set(o.tenant, (apps = new Map()));
    let series = apps.get(o.app);
    if (series === undefined) apps.set(o.app, (series = new Series()));
    const now = this.#now();
    const b = series.bucket(Math.floor(now / MINUTE_MS));
    b.calls++;
    b.bins[binOf(o.ms)]!++;
    if (o.outcome === 'ok') return;
    b.errors++;
    if (BREACH_CODES.has(o.outcome)) b.breaches++;
    const line = detail(o.error, 'line');
    const file = detail(o.error, 'file');
    const fileLine = detail(o.error, 'file_line');
    series.errors.push({
      time: new Date(now).toISOString(),
      app: o.app,
      version: o.version,
      method: o.method,
      code: o.outcome,
      request_id: o.requestId,
      ...(typeof line === 'number' ? { line } : {}),
      ...(typeof file === 'string' ? { file: file.slice(0, 300) } : {}),
      ...(typeof fileLine === 'number' ? { file_line: fileLine } : {}),
    });
    if (series.errors.length > RECENT_ERRORS) series.errors.shift();
  }

  #series(tenant: string, app: string | undefined): Series[] {
    const apps = this.#tenants.get(tenant);
    if (apps === undefined) return [];
    if (app !== undefined) return apps.has(app) ? [apps.get(app)!] : [];
    return [...apps.values()];
  }

  #within(series: Series[], minutes: number): Bucket[] {
    const current = Math.floor(this.#now() / MINUTE_MS);
    const out: Bucket[] = [];
    for (const s of series) for (const b of s.buckets) if (b !== undefined && b.minute > current - minutes) out.push(b);
    return out;
  }

  /** The last `minutes` (this minute included) of a tenant, or of one of its apps. */
  summary(tenant: string, app: string | undefined, minutes: number): CallSummary {
    return summarize(this.#within(this.#series(tenant, app), Math.min(minutes, WINDOW_MINUTES)));
  }

  /** One point per minute over the last hour, oldest first (minutes without calls included). */
  perMinute(tenant: string, app?: string): MinutePoint[] {
    const series = this.#series(tenant, app);
    const current = Math.floor(this.#now() / MINUTE_MS);
    const points: MinutePoint[] = [];
    for (let m = current - WINDOW_MINUTES + 1; m <= current; m++) {
      const buckets = series.map((s) => s.buckets[m % WINDOW_MINUTES]).filter((b): b is Bucket => b !== undefined && b.minute === m);
      points.push({ t: m * MINUTE_MS, ...summarize(buckets) });
    }
    return points;
  }

  /** The recent errors of a tenant or app, newest first. */
  recentErrors(tenant: string, app?: string): RecentError[] {
    return this.#series(tenant, app)
      .flatMap((s) => s.errors)
      .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
      .slice(0, RECENT_ERRORS);
  }
}
