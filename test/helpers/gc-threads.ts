/**
 * What the GC-thread tests share (`--single-threaded-gc`: src/host-flags.ts for the host,
 * process/protections.ts for sandbox processes): a guest method that makes garbage, and
 * a process's CPU ticks on V8's worker pool beside those of all its threads, from /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { statField } from './proc.ts';

/**
 * Guest code: `count` objects of short-lived garbage, young-generation collections all
 * along. A count, not a time: a busy machine gives a nice-10 sandbox little CPU in a
 * second of wall time.
 */
export function churn(count: number): number {
  let keep: unknown[] = [];
  let n = 0;
  while (n < count) {
    keep.push({ a: [n++, 2, 3] });
    if (keep.length > 20_000) keep = [];
  }
  return n;
}

/** proc(5) stat: utime and stime (fields 14, 15) in clock ticks, over `pid`'s threads, and over those named V8Worker. */
export function threadTicks(pid: number | 'self'): { workers: number; all: number } {
  let workers = 0;
  let all = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    const ticks = Number(statField(stat, 14)) + Number(statField(stat, 15));
    all += ticks;
    if (stat.includes('(V8Worker)')) workers += ticks;
  }
  return { workers, all };
}
