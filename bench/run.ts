/**
 * The benchmark runner (CONTRACT §6): `npm run bench [-- --json FILE] [--only PREFIX] [--quick]`.
 *
 * Prints a table on stdout; progress and notes go to stderr. With `--json FILE`, also
 * writes `{ node, results }`. Each measured path is one file in REGISTRY exporting
 * `names` (the result names it produces) and `bench(ctx)`.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { missingHostFlags } from '../src/host-flags.ts';
import { type BenchContext, type BenchFn, type Result, busyElsewhere, cpuSnapshot } from './stats.ts';
import { formatTable } from './table.ts';

/**
 * Every bench file, run in this order: baselines first, so each isohost path runs after
 * the baseline it is compared with, under the same conditions of the same run.
 * Adding a path is one line here. A file that fails to import is skipped with a note,
 * so a half-built path never blocks the rest of the run.
 */
const REGISTRY: readonly string[] = [
  './baseline-ivm.ts',
  './baseline-node-vm.ts',
  './baseline-worker.ts',
  './baseline-fetch.ts',
  './baseline-http.ts',
  './launch.ts',
  './call.ts',
  './call-fetch.ts',
  './http-call.ts',
  './storage-postgres.ts',
  './process.ts',
  // Last: neighbour breaches on purpose and density launches and disposes 500 isolates;
  // run earlier, their heap churn and GC showed up in the latency of the paths after them.
  // Density goes after neighbour for the same reason: right after its 1,500 disposals B's
  // p99 alone was 5.8–7.5 ms (1.6–4.1 without density before it) and the host loop's delay
  // p99 10–11 ms (6.4–7.3), and the attack measured first in that aftermath (launch-spin)
  // went over 2 in half the full runs and in none of eighteen runs of neighbour alone. It
  // still did after this change: the rest was each refused launch making an instance's
  // logger and bindings before the gate said no (fixed in InstanceHost#start, stop 23).
  // Density itself starts from a full GC (forceGc), so neighbour's garbage is not counted.
  './neighbour.ts',
  './density.ts',
];

/** Each isohost result → the baseline it is measured against (CONTRACT §6 table). */
export const BASELINE_OF: Readonly<Record<string, string>> = {
  'launch.cold': 'baseline.ivm.launch',
  'launch.warm': 'baseline.ivm.launch',
  'call.noop': 'baseline.ivm.call',
  'call.storage.get': 'baseline.ivm.call',
  'call.storage.set': 'baseline.ivm.call',
  'call.storage.get.postgres': 'baseline.pg.get',
  'call.storage.set.postgres': 'baseline.pg.set',
  'http.call.storage.postgres': 'http.call.storage.leveldb',
  'call.fetch': 'baseline.fetch.direct',
  'call.noop.process': 'baseline.ivm.call',
  'launch.warm.process': 'baseline.ivm.launch',
  'http.call': 'baseline.http.fastify',
  'neighbour.p99_ratio': 'neighbour.b.idle',
};

const UNITS = new Set(['ms', 'us', 'MB']);

interface BenchModule {
  file: string;
  names: readonly string[];
  bench: BenchFn;
}

const USAGE = `usage: node bench/run.ts [--json FILE] [--only PREFIX[,PREFIX…]] [--quick]
  --json FILE    also write { "node", "results" } to FILE
  --only PREFIX  run only results whose name starts with PREFIX (repeatable);
                 the baselines of selected paths always run with them
  --quick        fewer iterations (smoke test); numbers are indicative only`;

const note = (message: string): void => void process.stderr.write(`bench: ${message}\n`);

async function loadRegistry(): Promise<BenchModule[]> {
  const modules: BenchModule[] = [];
  for (const file of REGISTRY) {
    try {
      const mod = (await import(file)) as Partial<BenchModule>;
      if (typeof mod.bench !== 'function' || !Array.isArray(mod.names)) {
        throw new Error('must export `names: string[]` and `bench(ctx)`');
      }
      modules.push({ file, names: mod.names, bench: mod.bench });
    } catch (err) {
      note(`skipped ${file}: ${(err as Error).message}`);
    }
  }
  return modules;
}

/** Names matching any prefix, plus the baselines of those names. */
function select(modules: BenchModule[], prefixes: string[]): Set<string> {
  const all = modules.flatMap((m) => m.names);
  const chosen = new Set(prefixes.length === 0 ? all : all.filter((n) => prefixes.some((p) => n.startsWith(p))));
  for (const name of [...chosen]) {
    const baseline = BASELINE_OF[name];
    if (baseline === undefined) continue;
    if (all.includes(baseline)) chosen.add(baseline);
    else note(`${name}: its baseline ${baseline} is not in the registry; no ratio`);
  }
  return chosen;
}

/** Rejects records that do not match CONTRACT §6, naming the field. */
function checkResult(r: Result, file: string): void {
  const where = `${file}: result ${JSON.stringify(r.name)}`;
  if (!UNITS.has(r.unit)) throw new Error(`${where}: unit must be ms, us or MB, got ${r.unit}`);
  for (const key of ['p50', 'p99'] as const) {
    if (!Number.isFinite(r[key])) throw new Error(`${where}: ${key} is not a finite number`);
  }
  if (!Number.isInteger(r.n) || r.n < 1) throw new Error(`${where}: n must be a positive integer`);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        json: { type: 'string' },
        only: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const prefixes = (args.only ?? []).flatMap((o) => o.split(',')).filter((p) => p !== '');
  const quick = args.quick ?? false;

  const modules = await loadRegistry();
  const selected = select(modules, prefixes);
  if (selected.size === 0) {
    note(`--only ${prefixes.join(',')} matches no result; known: ${modules.flatMap((m) => m.names).join(', ')}`);
    return 2;
  }

  note(`node ${process.versions.node}, ${availableParallelism()} cpus, ${process.platform}-${process.arch}${quick ? ', --quick' : ''}`);
  const missing = missingHostFlags();
  if (missing.length > 0) note(`not the host's V8 flags: ${missing.join(' ')} missing (npm run bench passes them; src/host-flags.ts)`);
  const ctx: BenchContext = {
    quick,
    wants: (name) => selected.has(name),
    n: (full, quickN) => (quick ? quickN : full),
    note,
  };

  const results: Result[] = [];
  let failed = false;
  for (const mod of modules) {
    if (!mod.names.some((n) => selected.has(n))) continue;
    const t0 = performance.now();
    const cpu0 = cpuSnapshot();
    note(`${mod.file} …`);
    try {
      for (const r of await mod.bench(ctx)) {
        checkResult(r, mod.file);
        if (!mod.names.includes(r.name)) throw new Error(`${mod.file}: result ${r.name} is not in its names`);
        if (selected.has(r.name)) results.push(r);
      }
      const others = busyElsewhere(cpu0, cpuSnapshot());
      const load =
        others === undefined
          ? ''
          : `; other processes used ${others.toFixed(2)} cores meanwhile${others > 0.2 ? ' (numbers unreliable, rerun)' : ''}`;
      note(`${mod.file} done in ${((performance.now() - t0) / 1000).toFixed(1)} s${load}`);
    } catch (err) {
      // One broken path must not hide the others' numbers; the exit code still says so.
      failed = true;
      note(`${mod.file} failed: ${(err as Error).stack ?? String(err)}`);
    }
  }

  process.stdout.write(formatTable(results, BASELINE_OF));
  if (args.json !== undefined) {
    const report = { node: process.versions.node, results };
    await writeFile(args.json, `${JSON.stringify(report, null, 2)}\n`);
    note(`wrote ${args.json}`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
// A bench that leaves a socket, worker or timer open would keep the process alive
// forever and hang CI; this unref'd timer fires only in that case.
setTimeout(() => {
  note('open handles kept the process alive after the run; exiting (a bench is leaking)');
  process.exit(process.exitCode);
}, 2000).unref();
