/**
 * The attacks of bench/neighbour.ts (`neighbour.p99_ratio.<attack>`, CONTRACT §6 v0.2):
 * what tenant A runs, how A's tenant is configured, and what the platform saw of each
 * attack (for the row's `extra`). Each attack has an attacker tenant of its own, so
 * each starts with a full breach and log budget. The attacks are described in
 * neighbour.ts's file comment.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { droppedLogLines } from '../src/bindings/log/index.ts';
import type { Platform } from '../src/platform.ts';
import type { AppBundle } from '../src/sandbox/instance-host.ts';
import type { OneShotCaller } from '../src/sandbox/one-shot.ts';
import { bundle } from './platform.ts';

export type BenchPlatform = Platform & { dataDir: string };

/** B's method and the shared-tier attacks' methods. */
export const APP = bundle(
  'neighbour',
  `export async function small(a) { return { n: a, v: await fc.storage.get('k') }; }
export function spin() { for (;;); }
export function usp() { return new URLSearchParams('a&'.repeat(512 * 1024)).size; }`,
);

/** Every launch of this bundle spins in its top-level code until the launch's CPU deadline. */
const LAUNCH_SPIN_APP = bundle('launch-spin', 'for (;;);\nexport function never() {}');

/**
 * As much log output as one call can make. 256 lines of ~1 KiB reach the guest's bound
 * of 256 operations in flight and the 256 KiB per-call cap (runtime-api/prelude/
 * log-limits.ts) together, so each call hands the host the most messages and the most
 * bytes it can; the tenant's rate (1,000 lines/s, 1 MiB/s after a 5 MiB burst) is
 * exceeded within the first calls, and every line past it still crosses and is refused
 * by the host. Then lines beyond the cap: 8 KiB messages with 16 KiB of fields and
 * thousands of short ones, dropped and counted in the isolate.
 */
const LOG_FLOOD_APP = bundle(
  'log-flood',
  `export function flood() {
  const kib = 'x'.repeat(1000);
  for (let i = 0; i < 256; i++) console.log(i, kib);
  const wide = 'y'.repeat(8192), fields = { blob: 'z'.repeat(16000) };
  for (let i = 0; i < 64; i++) fc.log.warn(wide, fields);
  for (let i = 0; i < 4096; i++) console.error('again', i);
}`,
);

/**
 * One line per call, in as many calls as A's gate lets through: once the tenant's rate is
 * spent, every call drops its line, and each such call was owed a summary line on the
 * host (bindings/log/budget.ts, reportDropped). Found the host writing a line per call for
 * the tenant: half its busy event-loop time during this attack, before summary lines got
 * a budget of their own.
 */
const LOG_DRIP_APP = bundle('log-drip', 'export function drip() { console.log("x"); return 1; }');

/**
 * A fatal V8 OOM of the sandbox process (THREATS F48, the recipe of
 * test/security/f48-sandbox-crash.test.ts): a Map flood whose backing-store growth
 * escapes the isolate's 16 MB limit and aborts the whole process. Chosen over a signal
 * sent by the bench because it is the crash a tenant causes with its own input.
 */
const CRASH_APP = bundle(
  'crash',
  `export function alive() { return true; }
export function oom() { const m = new Map(); for (let i = 0; ; i++) m.set(i, 'v' + i); }`,
);

/**
 * Garbage that is kept: an array grown until the isolate's memory limit ends the call
 * (a memory breach, `resource_exhausted`, the isolate disposed; no process dies). What it
 * costs the neighbours is mostly V8's garbage collection of that isolate, and where it
 * runs: on V8's worker pool in the host (the shared tier), or on the isolate's own
 * thread in a sandbox process (`--single-threaded-gc`, protections.ts).
 */
const ALLOC_APP = bundle('alloc', 'export function ready() { return true; }\nexport function grow() { const a = []; for (;;) a.push({ x: a.length }); }');

/**
 * No attack (`fast-calls`, the reference row): a tenant that calls as fast as its
 * concurrency lets it, each call returning at once. What any busy tenant at the attacker's
 * concurrency costs B on this machine; an attack row near it costs B what a well-behaved
 * tenant does (bench/neighbour.ts).
 */
const FAST_CALLS_APP = bundle('fast-calls', 'export function quick() { return 1; }');

/**
 * No logging (`string-work`, the second reference row): every call of A builds the strings
 * log-flood's calls log — the 256 lines of ~1 KiB, the 64 wide lines with their fields as
 * JSON, the 4,096 short ones — and logs none of them: log-flood's work in the isolate
 * without its log path (bench/neighbour.ts).
 */
const STRING_WORK_APP = bundle(
  'string-work',
  `export function strings() {
  let n = 0;
  const kib = 'x'.repeat(1000);
  for (let i = 0; i < 256; i++) n += (String(i) + ' ' + kib).length;
  const wide = 'y'.repeat(8192);
  for (let i = 0; i < 64; i++) n += JSON.stringify({ msg: wide, blob: 'z'.repeat(16000) }).length;
  for (let i = 0; i < 4096; i++) n += ('again ' + i).length;
  return n;
}`,
);

/** A process-tier attacker is ready when one call of it succeeds; else why not (no sandbox process can run here). */
async function processReady(p: BenchPlatform, caller: OneShotCaller, note: (m: string) => void, name: string, app: AppBundle, method: string): Promise<string | undefined> {
  const tier = p.sandboxes.get(attackerId(name))!;
  const missing = Object.keys(tier.status().protections.missing);
  if (missing.length > 0) note(`neighbour.${name}: sandbox protections not active here: ${missing.join(', ')}`);
  try {
    await caller.call(p.tenants.get(attackerId(name)), app, { sub: 'a-user', claims: {} }, method, 'null');
    return undefined;
  } catch (err) {
    return `a process-tier call failed before any attack (${(err as Error).message})`;
  }
}

export interface Attack {
  name: string;
  app: AppBundle;
  method: string;
  /** The attacker tenant's config beyond bench/neighbour.ts's defaults (limits merged over them). */
  tenant?: { compute?: { isolation: 'process'; priority?: 'low' | 'idle' }; limits?: Record<string, number> };
  /** Before the attack: why it cannot run on this machine, or undefined. */
  ready?(p: BenchPlatform, caller: OneShotCaller, note: (m: string) => void): Promise<string | undefined>;
  /** Right before and right after B's measured stream: what the platform saw (deltas go in `extra`). */
  observe?(p: BenchPlatform): Record<string, number>;
}

function attackerId(name: string): string {
  return `attacker-${name}`;
}

export const ATTACKS: Record<string, Attack> = {
  spin: { name: 'spin', app: APP, method: 'spin' },
  'launch-spin': { name: 'launch-spin', app: LAUNCH_SPIN_APP, method: 'never' },
  urlsearchparams: { name: 'urlsearchparams', app: APP, method: 'usp' },
  'log-flood': {
    name: 'log-flood',
    app: LOG_FLOOD_APP,
    method: 'flood',
    observe: (p) => ({
      a_log_lines_dropped: droppedLogLines(p.tenants.get(attackerId('log-flood'))),
      log_file_kib: Math.round(statSync(hostLogFile(p.dataDir)).size / 1024),
    }),
  },
  'log-drip': { name: 'log-drip', app: LOG_DRIP_APP, method: 'drip', observe: (p) => ({ a_log_lines_dropped: droppedLogLines(p.tenants.get(attackerId('log-drip'))) }) },
  crash: {
    name: 'crash',
    app: CRASH_APP,
    method: 'oom',
    // cpu_ms high enough for the flood to outgrow the 16 MB heap before A's deadline (as in the F48 test).
    tenant: { compute: { isolation: 'process' }, limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000 } },
    ready: (p, caller, note) => processReady(p, caller, note, 'crash', CRASH_APP, 'alive'),
    observe(p) {
      const tier = p.sandboxes.get(attackerId('crash'))!;
      const out: Record<string, number> = { a_crashes: 0 };
      for (const [cause, n] of tier.crashes()) {
        out[`a_crashes_${cause}`] = n;
        out.a_crashes! += n;
      }
      return out;
    },
  },
  alloc: { name: 'alloc', app: ALLOC_APP, method: 'grow', tenant: { limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000 } } },
  'alloc-process': {
    name: 'alloc-process',
    app: ALLOC_APP,
    method: 'grow',
    tenant: { compute: { isolation: 'process' }, limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000 } },
    // A call that ends at once: a process-tier launch of the bundle, nothing grown.
    ready: (p, caller, note) => processReady(p, caller, note, 'alloc-process', ALLOC_APP, 'ready'),
  },
  'fast-calls': { name: 'fast-calls', app: FAST_CALLS_APP, method: 'quick' },
  'string-work': { name: 'string-work', app: STRING_WORK_APP, method: 'strings' },
  // string-work's A in a sandbox process of its own, at the default priority (nice 10) and
  // at `compute.priority: idle` (SCHED_IDLE, process/protections.ts): what a process
  // tenant's CPU work costs B at each.
  'string-work-process': {
    name: 'string-work-process',
    app: STRING_WORK_APP,
    method: 'strings',
    tenant: { compute: { isolation: 'process' } },
    ready: (p, caller, note) => processReady(p, caller, note, 'string-work-process', STRING_WORK_APP, 'strings'),
  },
  'string-work-idle': {
    name: 'string-work-idle',
    app: STRING_WORK_APP,
    method: 'strings',
    tenant: { compute: { isolation: 'process', priority: 'idle' } },
    ready: (p, caller, note) => processReady(p, caller, note, 'string-work-idle', STRING_WORK_APP, 'strings'),
  },
};

export { attackerId };

/** The host log of the bench platform: in its data dir, removed with it. */
export const hostLogFile = (dataDir: string) => join(dataDir, 'host.log');

/**
 * A real logger for the bench platform: the production logger's shape (src/platform.ts
 * createLogger: level info, synchronous writes), writing to a file instead of stderr, so
 * a log flood costs the host what it costs in production. Not `level: 'silent'`, which
 * would make the log-flood attack free.
 */
export function hostLogger(dataDir: string): { logger: Logger; close(): void } {
  const dest = pino.destination({ dest: hostLogFile(dataDir), sync: true, mkdir: true });
  return { logger: pino({ level: 'info', base: { pid: process.pid } }, dest), close: () => dest.destroy() };
}
