/**
 * `call.fetch`: a method that fetches the small body from the loopback server of
 * `baseline.fetch.direct`, through the real egress proxy (started by startEgress, as in
 * `serve`), one call at a time. The difference to the baseline is the whole platform
 * path: the call into the isolate, the guest Request/Response, the bridge, the fetch
 * binding with its per-call credential, the proxy's checks and its upstream hop.
 */
import pino from 'pino';
import { startEgress } from '../src/egress/wiring.ts';
import { startSmallBodyServer, SMALL_BODY } from './baseline-fetch.ts';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';
import { NOOP_BUNDLE, benchConfig, bundle, openBenchPlatform } from './platform.ts';

export const names = ['call.fetch'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  if (!ctx.wants('call.fetch')) return [];
  const server = await startSmallBodyServer();
  const logger = pino({ level: 'silent' });
  const tenants = [{ id: 'bench', network: { allow: [`127.0.0.1:${server.port}`] }, limits: { cpu_ms: 1000, wall_ms: 10_000 } }];
  // One config for both: the proxy takes its rules and key from it, the platform its tenants.
  const { config, dir } = await benchConfig(1, tenants, { egress_proxy: { host: '127.0.0.1', port: 0 } });
  const egress = await startEgress(config, { logger, ephemeralPort: true });
  const p = await openBenchPlatform(config, dir, { logger, fetchBinding: egress.fetchBinding });
  try {
    const tenant = p.tenants.get('bench');
    const { info } = await p.host.launch(tenant, bundle('noop', NOOP_BUNDLE), null);
    const args = JSON.stringify({ url: server.url });
    const first = JSON.parse(await p.host.call(tenant, null, info.id, 'fetchSmall', args));
    if (first !== SMALL_BODY) throw new Error('call.fetch returned a different body');
    const samples = await sample(ctx.n(100, 20), ctx.n(1000, 100), async () => {
      const t0 = now();
      await p.host.call(tenant, null, info.id, 'fetchSmall', args);
      return since(t0);
    });
    return [summarize('call.fetch', 'us', samples)];
  } finally {
    await p.dispose();
    await egress.close();
    await server.close();
  }
}
