/**
 * Timing and summary helpers shared by every bench file.
 *
 * Samples are nanoseconds from `process.hrtime.bigint()` (monotonic, not subject to
 * clock adjustment), converted to the result's unit only when summarised, so one
 * sample array can be reported in ms or µs without rounding twice.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Units allowed by CONTRACT §6. */
export type Unit = 'ms' | 'us' | 'MB';

/** One row of the benchmark output (CONTRACT §6). */
export interface Result {
  name: string;
  unit: Unit;
  p50: number;
  p99: number;
  n: number;
  extra?: Record<string, number | string>;
}

/** What the runner hands to every bench module. */
export interface BenchContext {
  /** `--quick`: the smoke-test mode; numbers are indicative only. */
  readonly quick: boolean;
  /** Whether a result name was selected by `--only` (baselines of selected paths included). */
  wants(name: string): boolean;
  /** Iteration count: `full` normally, `quick` under `--quick`. */
  n(full: number, quick: number): number;
  /** A progress or diagnostic line on stderr (stdout is reserved for the table). */
  note(message: string): void;
}

/** The signature every bench file exports as `bench`. */
export type BenchFn = (ctx: BenchContext) => Promise<Result[]>;

/** Monotonic time in nanoseconds. */
export const now = (): bigint => process.hrtime.bigint();

/** Nanoseconds elapsed since `start`, as a number (exact below 2^53 ns ≈ 104 days). */
export const since = (start: bigint): number => Number(process.hrtime.bigint() - start);

/**
 * Runs `once` `warmup` times (discarded: JIT, inline caches, lazily created threads
 * and sockets all settle during the first iterations), then `n` times, and returns
 * the `n` measured samples in ns.
 *
 * `once` returns its own elapsed ns, so an iteration can time only part of its work
 * (e.g. a launch bench disposes the isolate outside the timed section).
 *
 * Iterations run strictly one after another: every bench here measures latency of
 * one operation, not throughput of overlapping ones.
 *
 * @example
 * const samples = await sample(10, 200, async () => {
 *   const t0 = now();
 *   await doThing();
 *   return since(t0);
 * });
 */
export async function sample(warmup: number, n: number, once: () => number | Promise<number>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await once();
  const samples = new Array<number>(n);
  for (let i = 0; i < n; i++) samples[i] = await once();
  return samples;
}

/**
 * The p-quantile (0 < p ≤ 1) by the nearest-rank method: always an observed sample,
 * never an interpolation, so p99 of a small n is the worst-but-one-percent real call.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty sample set');
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const NS_PER: Record<Exclude<Unit, 'MB'>, number> = { ms: 1e6, us: 1e3 };

/** Rounds for output: 3 decimals is ns resolution for µs and µs resolution for ms. */
export const round = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Summarises ns samples into a result in `unit` ('ms' or 'us').
 *
 * @example
 * results.push(summarize('baseline.ivm.call', 'us', samples));
 */
export function summarize(
  name: string,
  unit: 'ms' | 'us',
  samplesNs: ArrayLike<number>,
  extra?: Result['extra'],
): Result {
  const sorted = Float64Array.from(samplesNs).sort();
  const scale = NS_PER[unit];
  const result: Result = {
    name,
    unit,
    p50: round(percentile(sorted, 0.5) / scale),
    p99: round(percentile(sorted, 0.99) / scale),
    n: sorted.length,
  };
  if (extra !== undefined) result.extra = extra;
  return result;
}

/**
 * Summarises samples already in MB (for memory benches such as
 * `density.rss_per_instance`).
 */
export function summarizeMB(name: string, samplesMB: ArrayLike<number>, extra?: Result['extra']): Result {
  const sorted = Float64Array.from(samplesMB).sort();
  const result: Result = {
    name,
    unit: 'MB',
    p50: round(percentile(sorted, 0.5)),
    p99: round(percentile(sorted, 0.99)),
    n: sorted.length,
  };
  if (extra !== undefined) result.extra = extra;
  return result;
}

let gcFn: (() => void) | undefined;

/**
 * Forces a full GC, for memory benches that read RSS. The bench script runs without
 * `--expose-gc` (it is `node bench/run.ts`), so the flag is set at run time and `gc`
 * picked up from a fresh context, where V8 installs it once the flag is on.
 */
export function forceGc(): void {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Current resident set size in MB. */
export const rssMB = (): number => process.memoryUsage.rss() / (1024 * 1024);

/** CPU time of the whole machine and of this process (all its threads), for {@link busyElsewhere}. */
export interface CpuSnapshot {
  /** Busy (non-idle, non-iowait) jiffies over all cores, from /proc/stat; undefined off Linux. */
  machineBusy?: number;
  /** This process's user + system µs (includes isolate, worker and libuv threads). */
  selfUs: number;
  at: bigint;
}

const TICK_US = 10_000; // USER_HZ is 100 on every mainstream Linux build (man 5 proc).

export function cpuSnapshot(): CpuSnapshot {
  let machineBusy: number | undefined;
  try {
    const fields = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy.
    machineBusy = fields.reduce((a, b) => a + b, 0) - fields[3] - fields[4];
  } catch {
    machineBusy = undefined;
  }
  const { user, system } = process.cpuUsage();
  return { machineBusy, selfUs: user + system, at: now() };
}

/**
 * Cores' worth of CPU that other processes used between two snapshots (0.5 = half a core).
 * On a shared 2-core machine a bench competing with, say, a test run is not measuring
 * isohost; the runner prints this so such numbers can be spotted and rerun.
 */
export function busyElsewhere(before: CpuSnapshot, after: CpuSnapshot): number | undefined {
  if (before.machineBusy === undefined || after.machineBusy === undefined) return undefined;
  const wallUs = Number(after.at - before.at) / 1e3;
  const othersUs = (after.machineBusy - before.machineBusy) * TICK_US - (after.selfUs - before.selfUs);
  return Math.max(0, othersUs / wallUs);
}
