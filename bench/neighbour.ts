/**
 * `neighbour.p99_ratio` (CONTRACT §6, THREATS B17): tenant B's call latency while tenant A
 * attacks, against B's latency alone, in the same run on the same platform.
 *
 * - B (the neighbour): a steady stream of small one-shot calls (one fc.storage.get, a
 *   small JSON result), one at a time, a millisecond apart — what a host app's users
 *   cause. Driven through OneShotCaller, the path `POST …/calls/:method` takes.
 * - A (the attacker), at the same time, through the same path:
 *   runaway calls — `for(;;)` until A's cpu_ms ends them (each breach disposes an
 *   isolate, so A's next call also costs a launch) — flooded at and beyond A's
 *   concurrency cap (more callers than `concurrency × 5`, so its gate queues and
 *   refuses with resource_exhausted all the time).
 *
 * Rows: `neighbour.b.idle` — B alone (ms); `neighbour.p99_ratio` — B under attack (ms;
 * p50/p99 are latencies, not ratios, because CONTRACT §6 fixes `unit` to ms/us/MB), with
 * `extra.p99_ratio` = attack p99 / idle p99 (the number CONTRACT §6 names),
 * `extra.p50_ratio`, `extra.idle_p99_ms`, `extra.attack_p99_ms`, A's cap and what A got.
 * Target: p99_ratio ≤ 2. The table's ratio column shows p50 vs the idle row.
 *
 * isolated-vm runs isolates on its own thread pool (hardware_concurrency + 1 threads, then
 * a new thread per task), so A's spinning isolates never block B's from being scheduled;
 * they compete for CPU cores. A tenant's `concurrency` (TenantGate) is therefore the lever:
 * A can keep at most that many cores busy. The attack is run with A's cap at one core
 * less than the machine has (at least 1), no call rate limit and the default breach
 * budget (`breaches_per_min`, which throttles a tenant that keeps breaching);
 * `NEIGHBOUR_CAP=n`, `NEIGHBOUR_RATE=r` (A's rate_per_sec) and `NEIGHBOUR_BREACHES=b`
 * (A's breaches_per_min; a large value switches the budget off) override them.
 *
 * Attacks (CONTRACT §6 v0.2, `neighbour.p99_ratio.<attack>`), each measured against the
 * same idle run:
 * - `spin`: the runaway calls above (`neighbour.p99_ratio` is this attack, its v0.1 name);
 * - `launch-spin`: every one-shot call of A launches a bundle whose top-level code spins
 *   until A's cpu_ms — the launch path (THREATS F42/F45: top-level code runs off the main
 *   thread, a failed launch is a breach);
 * - `urlsearchparams`: A's calls parse 1 MiB of `a&` with `new URLSearchParams` — once a
 *   ~0.9 s main-thread stall per call in Node's host-side parser (THREATS F43), now parsed
 *   in the isolate on A's own CPU budget.
 */
import { availableParallelism } from 'node:os';
import { OneShotCaller } from '../src/sandbox/one-shot.ts';
import { IsohostError } from '../src/errors.ts';
import { type BenchContext, type Result, now, since, summarize } from './stats.ts';
import { benchPlatform, bundle } from './platform.ts';

const APP = bundle(
  'neighbour',
  `export async function small(a) { return { n: a, v: await fc.storage.get('k') }; }
export function spin() { for (;;); }
export function usp() { return new URLSearchParams('a&'.repeat(512 * 1024)).size; }`,
);
/** Every launch of this bundle spins in its top-level code until the launch's CPU deadline. */
const LAUNCH_SPIN_APP = bundle('launch-spin', 'for (;;);\nexport function never() {}');

interface Attack {
  name: string;
  app: ReturnType<typeof bundle>;
  method: string;
}

const ATTACKS: Record<string, Attack> = {
  spin: { name: 'spin', app: APP, method: 'spin' },
  'launch-spin': { name: 'launch-spin', app: LAUNCH_SPIN_APP, method: 'never' },
  urlsearchparams: { name: 'urlsearchparams', app: APP, method: 'usp' },
};

export const names = ['neighbour.b.idle', 'neighbour.p99_ratio', ...Object.keys(ATTACKS).map((a) => `neighbour.p99_ratio.${a}`)];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** B's steady stream: `n` sequential calls, `gapMs` apart; returns each call's latency in ns. */
async function steady(caller: OneShotCaller, p: Awaited<ReturnType<typeof benchPlatform>>, n: number, gapMs: number): Promise<number[]> {
  const tenant = p.tenants.get('steady');
  const user = { sub: 'b-user', claims: {} };
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await caller.call(tenant, APP, user, 'small', String(i));
    samples.push(since(t0));
    await sleep(gapMs);
  }
  return samples;
}

interface AttackStats {
  timeouts: number;
  refused: number;
  other: number;
}

/** A's flood: `callers` loops of one-shot calls of the attack until `stop` resolves. */
function attack(caller: OneShotCaller, p: Awaited<ReturnType<typeof benchPlatform>>, how: Attack, callers: number, stop: Promise<void>): { done: Promise<void>; stats: AttackStats } {
  // One attacker tenant per attack: each starts with a full breach budget.
  const tenant = p.tenants.get(`attacker-${how.name}`);
  const user = { sub: 'a-user', claims: {} };
  const stats: AttackStats = { timeouts: 0, refused: 0, other: 0 };
  let stopped = false;
  void stop.then(() => (stopped = true));
  const loop = async () => {
    while (!stopped) {
      try {
        await caller.call(tenant, how.app, user, how.method, 'null');
      } catch (err) {
        const code = err instanceof IsohostError ? err.code : 'other';
        if (code === 'timeout') stats.timeouts++;
        else if (code === 'resource_exhausted') {
          stats.refused++;
          // A refused caller retries a millisecond later: ~1000 attempts/s per caller keeps
          // A's gate full and refusing. (Retrying with no pause at all would measure how
          // many rejections per second the host's one thread can serve — a flood any HTTP
          // edge must rate-limit — not whether tenants are isolated from each other.)
          await sleep(1);
        } else stats.other++;
      }
    }
  };
  return { done: Promise.all(Array.from({ length: callers }, loop)).then(() => {}), stats };
}

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const attacks = Object.keys(ATTACKS).filter((a) => ctx.wants(`neighbour.p99_ratio.${a}`) || (a === 'spin' && ctx.wants('neighbour.p99_ratio')));
  if (!ctx.wants('neighbour.b.idle') && attacks.length === 0) return [];
  const cap = Number(process.env.NEIGHBOUR_CAP ?? Math.max(1, availableParallelism() - 1));
  const rate = Number(process.env.NEIGHBOUR_RATE ?? 0);
  const breaches = Number(process.env.NEIGHBOUR_BREACHES ?? 30);
  const p = await benchPlatform(4, [
    ...Object.keys(ATTACKS).map((a) => ({ id: `attacker-${a}`, limits: { cpu_ms: 50, wall_ms: 5000, instances: 1000, concurrency: cap, rate_per_sec: rate, breaches_per_min: breaches } })),
    { id: 'steady', limits: { cpu_ms: 1000, wall_ms: 10_000, instances: 1000, concurrency: 16 } },
  ]);
  try {
    const caller = new OneShotCaller(p.host);
    const n = ctx.n(1000, 150);
    const gap = 1;
    await steady(caller, p, ctx.n(100, 20), gap); // warm-up: launch, JIT, storage
    const idle = await steady(caller, p, n, gap);
    const idleRow = summarize('neighbour.b.idle', 'ms', idle);
    const rows: Result[] = [idleRow];
    for (const name of attacks) {
      let stop!: () => void;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const flood = attack(caller, p, ATTACKS[name]!, cap * 6, stopped);
      await sleep(200); // let the attack reach its steady state
      const attacked = await steady(caller, p, n, gap);
      stop();
      await flood.done;
      const attackRow = summarize(`neighbour.p99_ratio.${name}`, 'ms', attacked);
      const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
      attackRow.extra = {
        p99_ratio: ratio(attackRow.p99, idleRow.p99),
        p50_ratio: ratio(attackRow.p50, idleRow.p50),
        idle_p99_ms: idleRow.p99,
        attack_p99_ms: attackRow.p99,
        a_concurrency: cap,
        a_rate_per_sec: rate,
        a_breaches_per_min: breaches,
        a_timeouts: flood.stats.timeouts,
        a_refused: flood.stats.refused,
        a_other: flood.stats.other,
      };
      ctx.note(`neighbour.${name}: A (cap ${cap}) ran ${flood.stats.timeouts} attack calls to timeout and was refused ${flood.stats.refused} times; B p99 ${idleRow.p99} → ${attackRow.p99} ms`);
      if (name === 'spin' && ctx.wants('neighbour.p99_ratio')) rows.push({ ...attackRow, name: 'neighbour.p99_ratio' });
      if (ctx.wants(`neighbour.p99_ratio.${name}`)) rows.push(attackRow);
    }
    return rows;
  } finally {
    await p.dispose();
  }
}
