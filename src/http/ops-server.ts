/**
 * The operations listener (`deployment.ops_listen`): `/healthz`, `/readyz` and `/metrics`
 * on an address of their own (a loopback or management network that scrapers and probes
 * reach and callers do not), sharing the API server's context: the same metrics registry,
 * readiness probes and draining flag. With ops_listen set, buildServer() leaves these three
 * routes off the public API, and the admin API and the console (issue 14) are served here
 * instead, with an /openapi.json of this listener's own.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { consoleRoutes } from './console.ts';
import { openApiOptions } from './openapi.ts';
import { adminRoutes } from './routes/admin.ts';
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
  // Its own /openapi.json: the admin API (issue 14) is documented where it is served.
  await ops.register(swagger, openApiOptions());
  await ops.register(probeRoutes(ctx));
  await ops.register(adminRoutes(ctx));
  await ops.register(consoleRoutes());
  ops.get(
    '/openapi.json',
    { schema: { operationId: 'getOpsOpenApi', summary: 'The ops listener\'s routes described as OpenAPI 3', tags: ['ops'], response: { 200: { description: 'an OpenAPI 3.0 document', type: 'object', additionalProperties: true } } } },
    async () => ops.swagger(),
  );
  return ops;
}
