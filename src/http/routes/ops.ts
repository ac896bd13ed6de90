/** Operations endpoints: liveness, readiness, metrics, realm JWKS, the OpenAPI document. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function opsRoutes(ctx: ServerContext) {
  return async (app: FastifyInstance) => {
    app.get('/healthz', { schema: { summary: 'Liveness', tags: ['ops'], response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }));

    app.get('/readyz', { schema: { summary: 'Readiness: storage, egress proxy, config', tags: ['ops'] } }, async (_req, reply) => {
      const checks: Record<string, string> = { config: 'ok' };
      const probes: Record<string, () => Promise<void>> = { storage: () => ctx.platform.backend.check(), ...ctx.readiness };
      for (const [name, probe] of Object.entries(probes)) {
        checks[name] = await probe().then(
          () => 'ok',
          () => 'failing',
        );
      }
      const ready = Object.values(checks).every((c) => c === 'ok');
      const d = ctx.platform.config.deployment;
      return reply.status(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        checks,
        deployment: { mode: d.mode, data_residency: d.data_residency, control_plane: d.control_plane, egress: d.egress },
      });
    });

    app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['ops'] } }, async (_req, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    });

    app.get<{ Params: { realm: string } }>(
      '/realms/:realm/.well-known/jwks.json',
      { schema: { summary: 'Public keys of an iam-internal realm', tags: ['identity'] } },
      async (req, reply) => {
        const jwks = await ctx.identity.jwks(req.params.realm);
        return reply.header('cache-control', 'public, max-age=60').send(jwks);
      },
    );
  };
}
