/**
 * `http.call`: one-shot calls (`POST /v1/tenants/:tenant/apps/:app/calls/:method`) over
 * loopback with keep-alive at concurrency 32, a real JWT verified per request (the
 * verified-token cache applies, as it would for a host app reusing a session token),
 * against a real listening isohost server; `extra.rps`. Driven exactly like
 * `baseline.http.fastify` (bench/load.ts in a worker thread).
 */
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createIdentity } from '../src/identity/registry.ts';
import { buildServer } from '../src/http/server.ts';
import { readBundle } from '../src/apps/bundle.ts';
import { httpLoadShape } from './baseline-http.ts';
import { SMALL_BODY } from './baseline-fetch.ts';
import { loadResult, runLoad } from './load.ts';
import type { BenchContext, Result } from './stats.ts';
import { benchPlatform } from './platform.ts';

export const names = ['http.call'];

const APP = `const payload = ${SMALL_BODY};\nexport function echo(args) { return payload; }\n`;

export async function bench(ctx: BenchContext): Promise<Result[]> {
  if (!ctx.wants('http.call')) return [];
  const p = await benchPlatform(4, [{ id: 'bench', limits: { cpu_ms: 1000, wall_ms: 10_000, instances: 1000, concurrency: 64 } }], { logger: pino({ level: 'silent' }) });
  const identity = createIdentity({ dataDir: p.dataDir, tenants: p.config.tenants });
  const app = await buildServer({ platform: p, identity, logger: pino({ level: 'silent' }) });
  try {
    const tenant = p.tenants.get('bench');
    const bundle = readBundle(Buffer.from(APP), p.config.deployment.max_bundle_bytes);
    await p.apps.deploy(tenant, 'echo', bundle, ['echo']);
    const token = await identity.mint('bench', { sub: 'bench-user', scope: 'apps:call', ttl: '1h' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const report = await runLoad({
      origin: `http://127.0.0.1:${port}`,
      path: '/v1/tenants/bench/apps/echo/calls/echo',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ id: 42 }),
      ...httpLoadShape(ctx),
    });
    return [loadResult('http.call', report)];
  } finally {
    await app.close();
    await p.dispose();
  }
}
