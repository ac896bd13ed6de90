/**
 * A closed-loop HTTP load generator on an undici `Pool`: `concurrency` loops, each
 * sending its next request as soon as its previous one has been read to the end, over
 * keep-alive connections. Used by `baseline.http.fastify` and by `http.call`, so both
 * are driven the same way.
 *
 * By default the loop runs in a worker thread: on the same event loop as the server
 * under test, the client's own parsing of 31 other responses would be counted in every
 * request's latency and would take half the server's thread. A worker gives the client
 * its own thread (on this 2-core machine, roughly its own core).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { type Result, now, round, since, summarize } from './stats.ts';

export interface LoadOptions {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  path: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  /** Requests in flight at once, one keep-alive connection each. Default 32 (CONTRACT §6). */
  concurrency?: number;
  /** Unmeasured load before the window, so connections, JIT and pools settle. Default 1000. */
  warmupMs?: number;
  /** Measured window. Default 5000. Ignored when `requests` is set. */
  durationMs?: number;
  /** Stop after this many measured requests instead of after `durationMs`. */
  requests?: number;
  /** A response with another status counts as an error. Default 200. */
  expectStatus?: number;
  /** Where the client loop runs; 'main' shares the caller's event loop. Default 'worker'. */
  thread?: 'worker' | 'main';
}

export interface LoadReport {
  /** Latency of each successful measured request, ns, request start to body end. */
  latenciesNs: Float64Array;
  /** Failed measured requests (wrong status or transport error). */
  errors: number;
  firstError?: string;
  /** Measured window including the drain of its last requests, ms. */
  elapsedMs: number;
  /** Completed measured requests (successful or not) per second. */
  rps: number;
  concurrency: number;
}

/** Marks workerData as ours, so importing this file in some other worker runs nothing. */
const WORKER_KEY = 'isohost.bench.load';

/**
 * Drives `opts.origin + opts.path` and reports latencies and throughput.
 *
 * @example
 * const report = await runLoad({ origin: server.origin, path: '/', durationMs: 2000 });
 * results.push(loadResult('http.call', report));
 */
export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  if ((opts.thread ?? 'worker') === 'main') return loadLoop(opts);
  const worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_KEY]: opts } });
  try {
    return await new Promise<LoadReport>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`load worker exited with code ${code} before reporting`)));
    });
  } finally {
    await worker.terminate();
  }
}

/** Summarises a load report as a ms result with `extra.rps` (CONTRACT §6). */
export function loadResult(name: string, report: LoadReport): Result {
  if (report.latenciesNs.length === 0) {
    throw new Error(`${name}: no request succeeded (${report.errors} errors; first: ${report.firstError ?? 'none'})`);
  }
  const extra: Record<string, number | string> = { rps: Math.round(report.rps), concurrency: report.concurrency };
  if (report.errors > 0) {
    extra.errors = report.errors;
    extra.first_error = report.firstError ?? '';
  }
  return summarize(name, 'ms', report.latenciesNs, extra);
}

async function loadLoop(opts: LoadOptions): Promise<LoadReport> {
  const concurrency = opts.concurrency ?? 32;
  const expectStatus = opts.expectStatus ?? 200;
  const warmupMs = opts.warmupMs ?? 1000;
  const durationMs = opts.durationMs ?? 5000;
  const limit = opts.requests ?? Infinity;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);

  // pipelining: 1 keeps one request per connection at a time, so concurrency is exact
  // and latency is not inflated by head-of-line waits inside a connection.
  const pool = new Pool(opts.origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let started = 0;
  let errors = 0;
  let firstError: string | undefined;

  const fail = (measured: boolean, message: string): void => {
    if (!measured) return;
    errors++;
    firstError ??= message;
  };

  const loop = async (): Promise<void> => {
    while (phase !== 'stop') {
      // Only requests that start inside the window are measured, so warm-up stragglers
      // do not count and every measured request saw the steady state.
      const measured = phase === 'measure';
      if (measured && ++started > limit) break;
      const t0 = now();
      try {
        const { statusCode, body } = await pool.request({
          path: opts.path,
          method: opts.method ?? 'GET',
          headers: opts.headers,
          body: opts.body,
        });
        await body.text();
        if (statusCode !== expectStatus) fail(measured, `status ${statusCode}`);
        else if (measured) latencies.push(since(t0));
      } catch (err) {
        fail(measured, (err as Error).message);
      }
    }
  };

  try {
    const loops = Array.from({ length: concurrency }, loop);
    await new Promise((r) => setTimeout(r, warmupMs));
    phase = 'measure';
    const t0 = now();
    if (opts.requests === undefined) {
      await new Promise((r) => setTimeout(r, durationMs));
      phase = 'stop';
    }
    await Promise.all(loops);
    phase = 'stop';
    const elapsedMs = since(t0) / 1e6;
    return {
      latenciesNs: Float64Array.from(latencies),
      errors,
      firstError,
      elapsedMs: round(elapsedMs),
      rps: ((latencies.length + errors) / elapsedMs) * 1000,
      concurrency,
    };
  } finally {
    phase = 'stop';
    await pool.close();
  }
}

// Worker entry: runs only when runLoad started this file as a worker.
if (!isMainThread && workerData?.[WORKER_KEY] !== undefined) {
  const report = await loadLoop(workerData[WORKER_KEY] as LoadOptions);
  // Transfer the samples rather than clone them: a 5 s window can hold 100k+ of them.
  parentPort!.postMessage(report, [report.latenciesNs.buffer as ArrayBuffer]);
}
