/**
 * Raw isolated-vm costs: the floors isohost's `launch.*` and `call.*` paths compete with
 * (CONTRACT §6). This file imports isolated-vm directly on purpose: the bridge-only rule
 * (STYLE habit 2) governs `src/`, and a baseline must not go through isohost code.
 */
import ivm from 'isolated-vm';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';

/** Same limit as the default tenant `limits.memory_mb`, so the heap setup matches. */
const MEMORY_LIMIT_MB = 64;

/** A small JSON-like argument, shaped like a typical mini-app method call. */
export const SMALL_ARG = Object.freeze({
  id: 42,
  name: 'ada',
  tags: ['a', 'b', 'c'],
  nested: { ok: true, score: 1.5, note: null },
});

/** Result names this file produces (the runner's `--only` selects by these). */
export const names = ['baseline.ivm.launch', 'baseline.ivm.call'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  if (ctx.wants('baseline.ivm.launch')) results.push(await launch(ctx));
  if (ctx.wants('baseline.ivm.call')) results.push(await call(ctx));
  return results;
}

/**
 * `new Isolate` + `createContextSync`: what any isolate-per-instance host pays before
 * it can load code. Sync variants because an async createContext adds a thread hop
 * isohost's launch path need not pay. Dispose is outside the timed section: teardown
 * happens after an instance is done and is not part of launch latency.
 */
async function launch(ctx: BenchContext): Promise<Result> {
  const once = (): number => {
    const t0 = now();
    const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB });
    const context = isolate.createContextSync();
    const elapsed = since(t0);
    context.release();
    isolate.dispose();
    return elapsed;
  };
  const samples = await sample(ctx.n(20, 5), ctx.n(300, 30), once);
  return summarize('baseline.ivm.launch', 'ms', samples);
}

/**
 * Async `Reference.apply` of `(a) => a` with copied argument and result: the least an
 * async host → isolate call can cost, hence the floor for `call.noop`.
 *
 * Calls are awaited one at a time. `call.noop` measures the latency of one call (a
 * request waiting on its answer), and most of that cost is waking the isolate's thread
 * (FINDINGS: 55 µs idle vs 164k calls/s pipelined); overlapping calls would measure
 * throughput instead and make the floor look far lower than any single call can be.
 */
async function call(ctx: BenchContext): Promise<Result> {
  const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB });
  try {
    const context = isolate.createContextSync();
    const fn: ivm.Reference<(a: unknown) => unknown> = context.evalSync('(a) => a', { reference: true });
    const options = { arguments: { copy: true }, result: { copy: true } } as const;

    // Guard that the bench measures a real round trip, not an error path.
    const echoed = await fn.apply(undefined, [SMALL_ARG], options);
    if (JSON.stringify(echoed) !== JSON.stringify(SMALL_ARG)) throw new Error('ivm echo returned a different value');

    const samples = await sample(ctx.n(500, 100), ctx.n(5000, 500), async () => {
      const t0 = now();
      await fn.apply(undefined, [SMALL_ARG], options);
      return since(t0);
    });
    fn.release();
    context.release();
    return summarize('baseline.ivm.call', 'us', samples);
  } finally {
    isolate.dispose();
  }
}
