/**
 * The operations listener (`deployment.ops_listen`): `/healthz`, `/readyz` and `/metrics`
 * on an address of their own (a loopback or management network that scrapers and probes
 * reach and callers do not), sharing the API server's context: the same metrics registry,
 * readiness probes and draining flag. With ops_listen set, buildServer() leaves these three
 * routes off the public API.
 */
import type { FastifyInstance } from 'fastify';
import { probeRoutes } from './routes/ops.ts';
import { createFastify } from './server.ts';

/**
 * Builds (does not listen) the ops server for an API server built by buildServer().
 *
 * @example
 * const api = await buildServer({ platform, identity, registry, readiness });
 * const ops = await buildOpsServer(api);
 * await ops.listen(config.deployment.ops_listen);
 * // on SIGTERM: api.isohost.draining = true → /readyz answers 503 on the ops listener
 */
export async function buildOpsServer(api: FastifyInstance): Promise<FastifyInstance> {
  const ctx = api.isohost;
  const ops = createFastify(ctx.platform.logger.child({ component: 'ops-http' }), 1024);
  await ops.register(probeRoutes(ctx));
  return ops;
}
