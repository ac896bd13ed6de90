/**
 * The process tier (issue 10):
 * - `call.noop.process`: `call.noop` for a `compute: process` tenant, through
 *   InstanceHost.call (gate, scope, the IPC round trip to its sandbox process, the
 *   isolate call there); target ≤ 3 × `baseline.ivm.call`. Load on a shared machine
 *   moves the two rows apart (they run seconds apart, and a call across processes pays
 *   two more sleeps and wake-ups than one into an isolate of this process), so the
 *   samples are taken in blocks alternating with blocks of the `baseline.ivm.call` loop
 *   itself: `extra.ivm_call_us` is that baseline's p50 from the same minutes and
 *   `extra.vs_ivm_call` the ratio of the two. A third loop in the same alternation is
 *   the floor of any process tier built on Node and isolated-vm, with no isohost code:
 *   a Node IPC round trip (advanced serialisation, as the sandbox's) to a child process
 *   that answers each message with the same async isolated-vm call as the baseline's,
 *   in an isolate of its own. `extra.floor_us` is its p50, `extra.floor_vs_ivm_call`
 *   the floor over the baseline: where that is above 3, the target is below the floor.
 * - `launch.warm.process`: InstanceHost.launch for that tenant with the sandbox's pool
 *   warm (the child's blank isolates refill between samples, untimed); target ≤ 1 ms.
 *   Every launch repeats the one before it, so each takes the sandbox's spare instance
 *   (child-tier.ts), loaded during the pause before it: what is timed is the host's side
 *   and the round trip to the sandbox, not the bundle's load. The shared tenant's
 *   launches load the bundle each time (the shared tier makes no spare).
 *   Alternating with it, the same launch for a `shared` tenant of the same platform:
 *   `extra.shared_ms` (its p50), so the cost of the process boundary reads off one run.
 *   And, each after the same pause, a bare Node IPC round trip to a child process that
 *   only echoes: `extra.ipc_idle_rtt_us` (its p50), the floor of any launch that crosses
 *   to a process idle that long (waking an idle process is dear on a VM whose idle vCPUs
 *   halt: 80–110 µs back to back, 307–431 µs after 25 ms idle, on the project's machine).
 * - `crash.recover_ms`: SIGKILL of the sandbox process that holds the tenant's instance →
 *   the tenant's next successful launch + call, p50, with the tier's standby process
 *   ready (untimed wait before each kill), as it is after start-up and after a first
 *   crash. `extra.cold_ms`: the same with no standby — a Node start, isolated-vm and the
 *   prelude snapshot, then the launch (the first start of a tier). Measured on a
 *   ProcessTier of its own whose restart policy restarts at once every time, because the
 *   default policy would call 5 kills a minute a crash loop and stop restarting.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import ivm from 'isolated-vm';
import pino from 'pino';
import { IsohostError } from '../src/errors.ts';
import { preludeSource } from '../src/sandbox/prelude-build.ts';
import { ProcessTier } from '../src/sandbox/process-tier.ts';
import type { TierInstance } from '../src/sandbox/tier.ts';
import { SMALL_ARG } from './baseline-ivm.ts';
import { NOOP_BUNDLE, benchPlatform, bundle } from './platform.ts';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';

export const names = ['call.noop.process', 'launch.warm.process', 'crash.recover_ms'];

const TENANT = { id: 'bench-process', compute: { isolation: 'process' }, limits: { cpu_ms: 1000, wall_ms: 10_000, instances: 100_000, concurrency: 64 } };
/** The same tenant in the shared tier: its launches alternate with the process tenant's. */
const SHARED = { ...TENANT, id: 'bench-shared', compute: { isolation: 'shared' } };
/** Samples per block when two loops alternate. */
const BLOCK = 250;
/** Untimed pause between warm launches: the child's pool refills one isolate at a time, off its event loop. */
const REFILL_PAUSE_MS = 25;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  if (ctx.wants('call.noop.process') || ctx.wants('launch.warm.process')) results.push(...(await viaPlatform(ctx)));
  if (ctx.wants('crash.recover_ms')) results.push(await recover(ctx));
  return results;
}

async function viaPlatform(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  const p = await benchPlatform(4, [TENANT, SHARED]);
  try {
    const tenant = p.tenants.get(TENANT.id);
    const shared = p.tenants.get(SHARED.id);
    const app = bundle('noop', NOOP_BUNDLE);
    // The first launch waits for the sandbox process started with the platform.
    const first = await p.host.launch(tenant, app, null);
    if (ctx.wants('launch.warm.process')) {
      let cold = 0;
      const echo = await ipcEcho();
      const ipcSamples: number[] = [];
      const launchOnce = (t: typeof tenant, counted: boolean) => async () => {
        await pause(REFILL_PAUSE_MS);
        const t0 = now();
        const { info, warm } = await p.host.launch(t, app, null);
        const elapsed = since(t0);
        if (!warm && counted) cold++;
        p.host.dispose(t, null, info.id);
        if (counted) {
          await pause(REFILL_PAUSE_MS);
          ipcSamples.push(await echo.once());
        }
        return elapsed;
      };
      try {
        const [samples, sharedSamples] = await alternate(ctx.n(20, 5), ctx.n(300, 30), 50, launchOnce(tenant, true), launchOnce(shared, false));
        if (cold > 0) ctx.note(`launch.warm.process: ${cold} launches found the sandbox's pool empty`);
        const sharedMs = summarize('x', 'ms', sharedSamples).p50;
        const ipcUs = summarize('x', 'us', ipcSamples.slice(ctx.n(20, 5))).p50;
        results.push(summarize('launch.warm.process', 'ms', samples, { shared_ms: sharedMs, ipc_idle_rtt_us: ipcUs }));
      } finally {
        echo.close();
      }
    }
    if (ctx.wants('call.noop.process')) {
      const args = JSON.stringify(SMALL_ARG);
      const echo = await ivmEcho();
      const floor = await ivmChildEcho();
      try {
        const callOnce = async () => {
          const t0 = now();
          await p.host.call(tenant, null, first.info.id, 'noop', args);
          return since(t0);
        };
        const [samples, ivmSamples, floorSamples] = await alternate(ctx.n(500, 100), ctx.n(5000, 300), BLOCK, callOnce, echo.once, floor.once);
        const row = summarize('call.noop.process', 'us', samples);
        const ivmUs = summarize('x', 'us', ivmSamples).p50;
        const floorUs = summarize('x', 'us', floorSamples).p50;
        const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
        results.push({ ...row, extra: { ivm_call_us: ivmUs, vs_ivm_call: ratio(row.p50, ivmUs), floor_us: floorUs, floor_vs_ivm_call: ratio(floorUs, ivmUs) } });
      } finally {
        echo.close();
        floor.close();
      }
    }
  } finally {
    await p.dispose();
  }
  return results;
}

/**
 * Runs the loops in alternating blocks of `block` samples, `n` samples each (after
 * `warmup` of each), so that all see the same load on a shared machine.
 */
async function alternate<L extends (() => Promise<number>)[]>(warmup: number, n: number, block: number, ...loops: L): Promise<{ [K in keyof L]: number[] }> {
  const out = loops.map((): number[] => []);
  for (const loop of loops) await sample(warmup, 0, loop);
  while (out[0]!.length < n) {
    const k = Math.min(block, n - out[0]!.length);
    for (const [i, loop] of loops.entries()) out[i]!.push(...(await sample(0, k, loop)));
  }
  return out as { [K in keyof L]: number[] };
}

/**
 * A child process running `code` that answers each Node IPC message (advanced
 * serialisation, as the sandbox's) with one message, and says `ready` once first.
 * `once` times one round trip of `message`, after 50 untimed ones.
 */
async function ipcChild(code: string, message: object): Promise<{ once: () => Promise<number>; close: () => void }> {
  const child = spawn(process.execPath, ['-e', `${code}\nprocess.send({ t: 'ready' });`], { cwd: import.meta.dirname, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`a bench child exited (${code}) before it was ready`)));
  });
  const roundTrip = () =>
    new Promise<number>((resolve) => {
      const t0 = now();
      child.once('message', () => resolve(since(t0)));
      child.send(message);
    });
  for (let i = 0; i < 50; i++) await roundTrip();
  return { once: roundTrip, close: () => child.kill() };
}

/** A child process that echoes each message: the bare Node IPC round trip. */
function ipcEcho(): Promise<{ once: () => Promise<number>; close: () => void }> {
  return ipcChild('process.on("message", (m) => process.send(m));', { t: 'ping', id: 1 });
}

/**
 * The floor of a process-tier call: a child process (plain `node`, none of the sandbox's
 * flags, nice or privilege drop, so if anything faster than a sandbox) that answers each
 * Node IPC message with an async isolated-vm call of `(a) => a` in an isolate of its own,
 * argument and result copied, as `baseline.ivm.call` makes in this process.
 */
function ivmChildEcho(): Promise<{ once: () => Promise<number>; close: () => void }> {
  const code = `const ivm = require('isolated-vm');
const isolate = new ivm.Isolate({ memoryLimit: 64 });
const fn = isolate.createContextSync().evalSync('(a) => a', { reference: true });
const options = { arguments: { copy: true }, result: { copy: true } };
process.on('message', (m) => fn.apply(undefined, [m.args], options).then((r) => process.send({ t: 'result', json: r })));`;
  return ipcChild(code, { t: 'call', args: JSON.stringify(SMALL_ARG) });
}

/**
 * The `baseline.ivm.call` loop's one call (bench/baseline-ivm.ts): async apply of
 * `(a) => a` with the argument and result copied, in an isolate of this process.
 */
async function ivmEcho(): Promise<{ once: () => Promise<number>; close: () => void }> {
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  const context = isolate.createContextSync();
  const fn: ivm.Reference<(a: unknown) => unknown> = context.evalSync('(a) => a', { reference: true });
  const options = { arguments: { copy: true }, result: { copy: true } } as const;
  return {
    once: async () => {
      const t0 = now();
      await fn.apply(undefined, [SMALL_ARG], options);
      return since(t0);
    },
    close: () => isolate.dispose(),
  };
}

async function recover(ctx: BenchContext): Promise<Result> {
  preludeSource(); // the host builds the prelude once, as openPlatform does; the child reads it
  const tier = new ProcessTier({
    tenantId: 'bench-crash',
    index: 0,
    limits: { memory_mb: 64, instances: 100, concurrency: 1 },
    warm: 1,
    dataDir: '/nonexistent',
    logger: pino({ level: 'silent' }),
    restart: { backoffMs: [0], loopCount: Number.POSITIVE_INFINITY, windowMs: 60_000 },
  });
  const sha256 = createHash('sha256').update(NOOP_BUNDLE).digest('hex');
  const spec = { source: NOOP_BUNDLE, sha256, metaJson: '{"app":{"id":"noop","version":"1"},"user":null}', label: 'bench-crash/noop@1/i', memoryMb: 64, cpuMs: 1000, wallMs: 10_000 };
  const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform ops in this bench'));
  const limits = { cpuMs: 1000, wallMs: 10_000 };
  /** Launch + one call; retried while the crash is still being noticed (unavailable). */
  const nextCall = async (): Promise<TierInstance> => {
    for (;;) {
      try {
        const inst = await tier.launch(spec, refuse);
        await inst.call('noop', '1', limits);
        return inst;
      } catch (err) {
        if (!(err instanceof IsohostError && err.code === 'unavailable')) throw err;
      }
    }
  };
  const t0 = now();
  tier.start();
  try {
    await nextCall();
    const coldMs = since(t0) / 1e6;
    const samples = await sample(ctx.n(2, 1), ctx.n(20, 5), async () => {
      while (!tier.status().standby) await pause(10);
      const pid = tier.pids()[0]!;
      const t0 = now();
      process.kill(pid, 'SIGKILL');
      await nextCall();
      const elapsed = since(t0);
      if (tier.pids().includes(pid)) throw new Error('crash.recover_ms: the killed process still counts as live');
      return elapsed;
    });
    return { ...summarize('crash.recover_ms', 'ms', samples), extra: { cold_ms: Number(coldMs.toFixed(1)) } };
  } finally {
    await tier.close();
  }
}
