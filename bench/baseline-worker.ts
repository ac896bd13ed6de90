/**
 * worker_threads — what a user would pick for a thread boundary without a native addon:
 * a whole Node environment per sandbox. For the README's comparison table (CONTRACT §6).
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { SMALL_ARG } from './baseline-ivm.ts';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';

/**
 * Echo worker. It posts 'ready' once its message handler is installed, so launch is
 * timed to ready-to-call rather than to 'online' (which fires before user code runs).
 * Eval'd code is CommonJS, hence `require`.
 */
const ECHO_WORKER = `
  const { parentPort } = require('node:worker_threads');
  parentPort.on('message', (m) => parentPort.postMessage(m));
  parentPort.postMessage('ready');
`;

/** Result names this file produces (the runner's `--only` selects by these). */
export const names = ['baseline.worker.launch', 'baseline.worker.call'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  if (ctx.wants('baseline.worker.launch')) results.push(await launch(ctx));
  if (ctx.wants('baseline.worker.call')) results.push(await call(ctx));
  return results;
}

async function startWorker(): Promise<Worker> {
  const worker = new Worker(ECHO_WORKER, { eval: true });
  const [first] = await once(worker, 'message');
  if (first !== 'ready') throw new Error(`echo worker said ${String(first)} instead of ready`);
  return worker;
}

/** `new Worker` to its first message. Terminate is outside the timed section. */
async function launch(ctx: BenchContext): Promise<Result> {
  const samples = await sample(ctx.n(3, 1), ctx.n(40, 5), async () => {
    const t0 = now();
    const worker = await startWorker();
    const elapsed = since(t0);
    await worker.terminate();
    return elapsed;
  });
  return summarize('baseline.worker.launch', 'ms', samples);
}

/**
 * One postMessage round trip (structured clone both ways). Awaited one at a time, like
 * `baseline.ivm.call`, so both measure the latency of a single call.
 */
async function call(ctx: BenchContext): Promise<Result> {
  const worker = await startWorker();
  try {
    // One standing listener instead of events.once per call: once() adds and removes
    // listeners for 'message' and 'error' each time, a cost that is not the boundary's.
    let settle: (message: unknown) => void = () => {};
    worker.on('message', (message) => settle(message));
    const roundTrip = (): Promise<unknown> =>
      new Promise((resolve) => {
        settle = resolve;
        worker.postMessage(SMALL_ARG);
      });
    if (JSON.stringify(await roundTrip()) !== JSON.stringify(SMALL_ARG)) throw new Error('worker echo returned a different value');

    const samples = await sample(ctx.n(300, 50), ctx.n(3000, 300), async () => {
      const t0 = now();
      await roundTrip();
      return since(t0);
    });
    return summarize('baseline.worker.call', 'us', samples);
  } finally {
    await worker.terminate();
  }
}
