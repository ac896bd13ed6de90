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
import { NOOP_BUNDLE, benchPlatform, bundle } from './platform.ts';
import { validateConfig } from '../src/config/load.ts';

export const names = ['call.fetch'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  if (!ctx.wants('call.fetch')) return [];
  const server = await startSmallBodyServer();
  const logger = pino({ level: 'silent' });
  const tenants = [{ id: 'bench', network: { allow: [`127.0.0.1:${server.port}`] }, limits: { cpu_ms: 1000, wall_ms: 10_000 } }];
  // The egress proxy reads the same config the platform opens; a throwaway data dir holds its key.
  const probe = await benchPlatform(0, tenants, { logger });
  const config = validateConfig(
    { deployment: { data_dir: probe.dataDir, egress_proxy: { host: '127.0.0.1', port: 0 } }, tenants: tenants.map((t) => ({ ...t, storage: { namespace: t.id, isolation: 'schema' }, identity: { provider: 'iam-internal', realm: t.id } })) },
    probe.dataDir,
  );
  await probe.close();
  const egress = await startEgress(config, { logger, ephemeralPort: true });
  const p = await benchPlatform(1, tenants, { logger, fetchBinding: egress.fetchBinding });
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
