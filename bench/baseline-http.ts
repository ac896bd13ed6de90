/**
 * `baseline.http.fastify`: a bare fastify route returning the same small JSON, driven
 * exactly as `http.call` is (bench/load.ts, keep-alive, concurrency 32). The gap between
 * the two is isohost's per-request cost: auth, routing to a tenant, launch and call.
 */
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { SMALL_BODY } from './baseline-fetch.ts';
import { type LoadOptions, loadResult, runLoad } from './load.ts';
import type { BenchContext, Result } from './stats.ts';

/** Load shape shared with `http.call`, so both rows are comparable. */
export function httpLoadShape(ctx: BenchContext): Pick<LoadOptions, 'concurrency' | 'warmupMs' | 'durationMs'> {
  return { concurrency: 32, warmupMs: ctx.quick ? 300 : 1000, durationMs: ctx.quick ? 1000 : 5000 };
}

/** Result names this file produces (the runner's `--only` selects by these). */
export const names = ['baseline.http.fastify'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  if (!ctx.wants('baseline.http.fastify')) return [];
  // No logger: isohost logs per request, but the baseline is the bare framework floor.
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
  const payload = JSON.parse(SMALL_BODY) as unknown;
  // POST with a JSON body, like a one-shot call (`POST …/calls/:method`), so the
  // baseline pays the same body parsing and serialisation as `http.call`.
  app.post('/echo', async () => payload);
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { port } = app.server.address() as AddressInfo;
    const report = await runLoad({
      origin: `http://127.0.0.1:${port}`,
      path: '/echo',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 42 }),
      ...httpLoadShape(ctx),
    });
    return [loadResult('baseline.http.fastify', report)];
  } finally {
    await app.close();
  }
}
