/**
 * `call.storage.get.postgres`, `call.storage.set.postgres`: the `call.storage.*` paths of
 * call.ts for a tenant on PostgreSQL (issue 13), against `baseline.pg.get` / `baseline.pg.set`:
 * one raw parameterised query through `pg` on the same server, the same table, and a pool
 * set up as the tenant's (same size, same role and search_path, synchronous_commit on).
 *
 * `http.call.storage.postgres` / `.leveldb`: `http.call` of bench/http-call.ts with a one-shot
 * method that reads one key, once per engine in the same run (issue 13: PostgreSQL ≥ 70 % of
 * LevelDB's rps; `extra.rps`). Both servers are up at once and loaded in alternation, each
 * engine's window cut into segments (`extra.segments`), so both see the same minutes.
 *
 * Each call row carries in `extra.store_p50_us` the p50 of the same operation on the tenant's
 * store alone (no isolate), timed in alternation with the call: call − store is the sandbox's
 * share, store − baseline the storage layer's (its write function, pool and wrappers). And in
 * `extra.noop_call_p50_us` a call into the same instance that makes no op, also alternated:
 * call − store − noop_call is the op's own round trip out of the isolate and back. And in
 * `extra.raw_p50_us` the baseline's own statement, timed in that same alternation: a statement
 * that follows other work waits longer than one of a back-to-back loop (the server's process
 * has gone idle; a set measured 1 ms apart took 200–300 µs more than back to back), so
 * store − raw is the storage layer's own cost, free of that.
 *
 * Each http row also carries where the CPU went, over the whole load (warmup included):
 * `host_cpu_us_per_call`, this process's CPU (server, isolates and the load client) per call,
 * and on PostgreSQL `pg_cpu_us_per_call`, the server's processes' (Linux /proc only). With
 * two cores and both sides busy, the rps ratio follows the sum of the two.
 *
 * `call.storage.get.postgres` also carries `extra.ivm_floor_p50_us`, timed in that same
 * alternation: the baseline's statement awaited by guest code in a raw isolated-vm isolate
 * through an async `Reference.apply` (no isohost code): the floor of any design in which
 * guest code awaits a host query through isolated-vm.
 *
 * The server is a fresh one started as in the tests (test/helpers/postgres.ts), with
 * `fsync` on as in production: a set pays for its WAL flush in both rows. Without a
 * PostgreSQL on the machine the file notes why and yields no results.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import ivm from 'isolated-vm';
import pg from 'pg';
import pino from 'pino';
import { readBundle } from '../src/apps/bundle.ts';
import { buildServer } from '../src/http/server.ts';
import { createIdentity } from '../src/identity/registry.ts';
import { findPostgres, startPostgres } from '../test/helpers/postgres.ts';
import { SMALL_BODY } from './baseline-fetch.ts';
import { httpLoadShape } from './baseline-http.ts';
import { SMALL_ARG } from './baseline-ivm.ts';
import { type LoadOptions, type LoadReport, loadResult, runLoad } from './load.ts';
import { NOOP_BUNDLE, benchConfig, bundle, openBenchPlatform } from './platform.ts';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';

export const names = ['baseline.pg.get', 'baseline.pg.set', 'call.storage.get.postgres', 'call.storage.set.postgres', 'http.call.storage.leveldb', 'http.call.storage.postgres'];

/** A one-shot call that reads one key (issue 13: PostgreSQL ≥ 70 % of LevelDB's rps, same run). */
const READER = `export async function read(args) { return await fc.storage.get("k"); }\n`;

/** Segments each engine's measured window is cut into, run in alternation with the other engine's. */
const HTTP_SEGMENTS = 4;

/** One engine's server for `http.call.storage.*`, loaded in segments; each segment's load and CPU add up. */
interface HttpStorageTarget {
  readonly name: string;
  /** Runs one segment of load; what it measured counts in the result unless `record` is false (a warm-up). */
  segment(shape: Pick<LoadOptions, 'concurrency' | 'warmupMs' | 'durationMs'>, record?: boolean): Promise<void>;
  result(): Result;
  close(): Promise<void>;
}

/** `http.call` (bench/http-call.ts) with a method that reads one key, on the given storage engine. */
async function httpStorageTarget(name: string, storage: Record<string, unknown>): Promise<HttpStorageTarget> {
  const { config, dir } = await benchConfig(4, [{ id: 'bench', limits: { cpu_ms: 1000, wall_ms: 10_000, instances: 1000, concurrency: 64 } }], { storage });
  const p = await openBenchPlatform(config, dir);
  const identity = createIdentity({ dataDir: p.dataDir, tenants: p.config.tenants });
  const app = await buildServer({ platform: p, identity, logger: pino({ level: 'silent' }) });
  const tenant = p.tenants.get('bench');
  await p.apps.deploy(tenant, 'reader', readBundle(Buffer.from(READER), p.config.deployment.max_bundle_bytes), ['read']);
  await tenant.store.app('reader').set('k', SMALL_BODY);
  const token = await identity.mint('bench', { sub: 'bench-user', scope: 'apps:call', ttl: '1h' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const pgCpu = storage.engine === 'postgres' ? await serverCpu(String(storage.url)) : undefined;
  const reports: LoadReport[] = [];
  let wallUs = 0;
  let hostCpuUs = 0;
  let pgCpuUs = 0;
  return {
    name,
    async segment(shape, record = true) {
      const cpu0 = process.cpuUsage();
      const pg0 = pgCpu?.();
      const t0 = now();
      const report = await runLoad({
        origin: `http://127.0.0.1:${port}`,
        path: '/v1/tenants/bench/apps/reader/calls/read',
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: '{}',
        ...shape,
      });
      if (!record) return;
      reports.push(report);
      wallUs += since(t0) / 1000;
      const { user, system } = process.cpuUsage(cpu0);
      hostCpuUs += user + system;
      if (pg0 !== undefined && pgCpu !== undefined) pgCpuUs += pgCpu() - pg0;
    },
    result() {
      const report = mergeReports(reports);
      const result = loadResult(name, report);
      // Cores used over the load (warm-ups included), divided by calls per second: CPU per call.
      const perCall = (cpuUs: number) => Math.round((cpuUs / wallUs / report.rps) * 1e6);
      const extra: Record<string, number | string> = { ...result.extra, segments: reports.length, host_cpu_us_per_call: perCall(hostCpuUs) };
      if (pgCpu !== undefined) extra.pg_cpu_us_per_call = perCall(pgCpuUs);
      return { ...result, extra };
    },
    async close() {
      await app.close();
      await p.dispose();
    },
  };
}

/** The segments of one engine as one load: latencies together, rps over the measured windows together. */
function mergeReports(reports: LoadReport[]): LoadReport {
  const latencies = new Float64Array(reports.reduce((n, r) => n + r.latenciesNs.length, 0));
  let at = 0;
  for (const r of reports) {
    latencies.set(r.latenciesNs, at);
    at += r.latenciesNs.length;
  }
  const elapsedMs = reports.reduce((n, r) => n + r.elapsedMs, 0);
  const requests = reports.reduce((n, r) => n + r.rps * (r.elapsedMs / 1000), 0);
  const errors = reports.reduce((n, r) => n + r.errors, 0);
  const firstError = reports.find((r) => r.firstError !== undefined)?.firstError;
  return { latenciesNs: latencies, errors, ...(firstError === undefined ? {} : { firstError }), elapsedMs, rps: requests / (elapsedMs / 1000), concurrency: reports[0]!.concurrency };
}

/**
 * The http rows: each engine's measured window cut into HTTP_SEGMENTS segments, run in
 * alternation (LevelDB, PostgreSQL, LevelDB, …), so that both see the same minutes of a
 * shared machine. Run one after the other, the ratio moved 48–87 % between runs.
 */
async function httpStorage(ctx: BenchContext, targets: { name: string; storage: Record<string, unknown> }[]): Promise<Result[]> {
  const opened: HttpStorageTarget[] = [];
  try {
    for (const t of targets) opened.push(await httpStorageTarget(t.name, t.storage));
    const shape = httpLoadShape(ctx);
    const segment = { concurrency: shape.concurrency, warmupMs: Math.ceil((shape.warmupMs ?? 1000) / 2), durationMs: Math.ceil((shape.durationMs ?? 5000) / HTTP_SEGMENTS) };
    // A first, longer warm-up of each: connections, JIT, the pools.
    for (const t of opened) await t.segment({ ...segment, warmupMs: shape.warmupMs, durationMs: 1 }, false);
    for (let i = 0; i < HTTP_SEGMENTS; i++) for (const t of opened) await t.segment(segment);
    return opened.map((t) => t.result());
  } finally {
    for (const t of opened) await t.close();
  }
}

/**
 * A reader of the CPU time (µs) used so far by the PostgreSQL server at `url`: the postmaster
 * and its children, from /proc (a process that exits between two reads takes its time with it).
 * Undefined where /proc is not there.
 */
async function serverCpu(url: string): Promise<(() => number) | undefined> {
  const stat = (pid: string): string[] | undefined => {
    try {
      // Fields after "(comm) ": [1] ppid, [11] utime, [12] stime, in clock ticks (100 a second on Linux).
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    } catch {
      return undefined;
    }
  };
  const client = new pg.Client(url);
  await client.connect();
  let postmaster: string | undefined;
  try {
    // Read while the backend lives: once the client ends, its /proc entry goes.
    const backend = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    postmaster = stat(String(backend))?.[1];
  } finally {
    await client.end();
  }
  if (postmaster === undefined) return undefined;
  return () => {
    let ticks = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^[0-9]+$/.test(pid)) continue;
      const fields = stat(pid);
      if (fields !== undefined && (pid === postmaster || fields[1] === postmaster)) ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks * 10_000;
  };
}

const POOL_MAX = 10;

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const found = await findPostgres();
  if (!found.ok) {
    ctx.note(`storage-postgres skipped: ${found.reason}`);
    return [];
  }
  const server = await startPostgres(found.binaries, { fsync: true });
  const results: Result[] = [];
  try {
    if (CALL_NAMES.some((n) => ctx.wants(n))) results.push(...(await callStorage(ctx, server.url)));
    const http = [
      { name: 'http.call.storage.leveldb', storage: { engine: 'leveldb' } },
      { name: 'http.call.storage.postgres', storage: { engine: 'postgres', url: server.url, pool_max: POOL_MAX } },
    ].filter((t) => ctx.wants(t.name));
    if (http.length > 0) results.push(...(await httpStorage(ctx, http)));
  } finally {
    await server.stop();
  }
  return results;
}

const CALL_NAMES = ['baseline.pg.get', 'call.storage.get.postgres', 'baseline.pg.set', 'call.storage.set.postgres'];

/** The call.storage.* paths on PostgreSQL, each after its raw-pg baseline. */
async function callStorage(ctx: BenchContext, url: string): Promise<Result[]> {
  const results: Result[] = [];
  const { config, dir } = await benchConfig(1, [{ id: 'bench', limits: { cpu_ms: 1000, wall_ms: 10_000, instances: 100_000, concurrency: 64 } }], {
    storage: { engine: 'postgres', url, pool_max: POOL_MAX },
  });
  const p = await openBenchPlatform(config, dir);
  const ident = (p.backend as unknown as { identOf(ns: string): string }).identOf('bench');
  const raw = new pg.Pool({ connectionString: url, max: POOL_MAX, options: `-c synchronous_commit=on -c role=${ident} -c search_path=${ident}` });
  let floor: Awaited<ReturnType<typeof ivmAwaiting>> | undefined;
  try {
    const tenant = p.tenants.get('bench');
    const { info } = await p.host.launch(tenant, bundle('noop', NOOP_BUNDLE), null);
    const args = JSON.stringify(SMALL_ARG);
    await p.host.call(tenant, null, info.id, 'set', args);
    const key = Buffer.from('k');
    const value = Buffer.from(args);
    const store = tenant.store.app('noop');
    /** The store operation each call row is timed against. */
    const alone: Record<string, () => Promise<unknown>> = {
      'call.storage.get.postgres': () => store.get('k'),
      'call.storage.set.postgres': () => store.set('k', args),
    };
    const rawGet = () => raw.query({ name: 'get', text: 'SELECT value FROM entries WHERE space = $1 AND key = $2', values: ['noop', key] });
    const rawSet = () =>
      raw.query({ name: 'set', text: 'INSERT INTO entries (space, key, value) VALUES ($1, $2, $3) ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value', values: ['noop', Buffer.from('raw'), value] });
    /** The baseline's statement, timed again inside each call row's alternation. */
    const rawOf: Record<string, () => Promise<unknown>> = { 'call.storage.get.postgres': rawGet, 'call.storage.set.postgres': rawSet };
    floor = await ivmAwaiting(async () => ((await rawGet()).rows[0] as { value: Buffer } | undefined)?.value.toString('utf8'));
    const floorOf: Record<string, () => Promise<unknown>> = { 'call.storage.get.postgres': floor.once };
    const paths: [string, () => Promise<unknown>, number][] = [
      ['baseline.pg.get', rawGet, 3000],
      ['call.storage.get.postgres', () => p.host.call(tenant, null, info.id, 'get', args), 3000],
      ['baseline.pg.set', rawSet, 1000],
      ['call.storage.set.postgres', () => p.host.call(tenant, null, info.id, 'set', args), 1000],
    ];
    for (const [name, once, n] of paths) {
      if (!ctx.wants(name)) continue;
      const storeOnce = alone[name];
      const storeSamples: number[] = [];
      const noopSamples: number[] = [];
      const rawSamples: number[] = [];
      const floorSamples: number[] = [];
      const floorOnce = floorOf[name];
      const samples = await sample(ctx.n(300, 50), ctx.n(n, 200), async () => {
        if (storeOnce !== undefined) {
          const s0 = now();
          await storeOnce();
          storeSamples.push(since(s0));
          const n0 = now();
          await p.host.call(tenant, null, info.id, 'noop', args);
          noopSamples.push(since(n0));
          const r0 = now();
          await rawOf[name]();
          rawSamples.push(since(r0));
          if (floorOnce !== undefined) {
            const f0 = now();
            await floorOnce();
            floorSamples.push(since(f0));
          }
        }
        const t0 = now();
        await once();
        return since(t0);
      });
      // What the call is made of, timed in the same minutes: the store operation alone, and a
      // call into the same instance that makes no op (call.noop). The rest of the call row is
      // the op's own round trip out of the isolate and back (post, then the reply's apply).
      const extra =
        storeOnce === undefined
          ? undefined
          : {
              store_p50_us: summarize(name, 'us', storeSamples.slice(-samples.length)).p50,
              noop_call_p50_us: summarize(name, 'us', noopSamples.slice(-samples.length)).p50,
              raw_p50_us: summarize(name, 'us', rawSamples.slice(-samples.length)).p50,
              ...(floorOnce === undefined ? {} : { ivm_floor_p50_us: summarize(name, 'us', floorSamples.slice(-samples.length)).p50 }),
            };
      results.push(summarize(name, 'us', samples, extra));
    }
  } finally {
    floor?.close();
    await raw.end();
    await p.dispose();
  }
  return results;
}

/** Guest code in a raw isolate that awaits `query` through an async Reference.apply, as a storage get would. */
async function ivmAwaiting(query: () => Promise<string | undefined>): Promise<{ once: () => Promise<unknown>; close: () => void }> {
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  const context = await isolate.createContext();
  await context.global.set('query', new ivm.Reference(query));
  const fn: ivm.Reference = await context.eval('(async () => await query.apply(undefined, [], { result: { promise: true, copy: true } }))', { reference: true });
  const options = { result: { promise: true, copy: true } } as const;
  return { once: () => fn.apply(undefined, [], options), close: () => isolate.dispose() };
}
