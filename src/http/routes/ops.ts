/**
 * Operations endpoints: liveness, readiness and metrics (on the API listener, or on their
 * own with `deployment.ops_listen`: see ops-server.ts), and the realm JWKS (always public:
 * callers' verifiers need it).
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';

const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not_ready', 'draining'] },
    checks: { type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'failing'] } },
    deployment: { type: 'object', additionalProperties: { type: 'string' } },
    /** Per `compute: process` tenant: its sandbox state and which protections are active (process-tier.ts ProcessTierStatus). */
    sandbox: { type: 'object', additionalProperties: { type: 'object', additionalProperties: true } },
  },
} as const;

/** /healthz, /readyz and /metrics. */
export function probeRoutes(ctx: ServerContext) {
  return async (app: FastifyInstance) => {
    app.get(
      '/healthz',
      { schema: { operationId: 'getHealth', summary: 'Liveness', tags: ['ops'], response: { 200: { description: 'the process answers', type: 'object', properties: { status: { type: 'string' } } }, ...errorResponses() } } },
      async () => ({ status: 'ok' }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          operationId: 'getReadiness',
          summary: 'Readiness: storage, egress proxy, config; 503 while draining after SIGTERM',
          tags: ['ops'],
          response: { 200: { ...readiness, description: 'ready' }, 503: { ...readiness, description: 'not ready (a check fails) or draining' } },
        },
      },
      async (_req, reply) => {
        // A load balancer stops sending new calls while in-flight ones finish.
        if (ctx.draining) return reply.status(503).send({ status: 'draining' });
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
          sandbox: ctx.platform.sandboxes.status(),
        });
      },
    );

    app.get(
      '/metrics',
      {
        schema: {
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          tags: ['ops'],
          response: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses() },
        },
      },
      async (_req, reply) => {
        const text = await ctx.metrics.registry.metrics();
        return reply.type(ctx.metrics.registry.contentType).send(text);
      },
    );
  };
}

/** The public keys of iam-internal realms. */
export function realmRoutes(ctx: ServerContext) {
  return async (app: FastifyInstance) => {
    app.get<{ Params: { realm: string } }>(
      '/realms/:realm/.well-known/jwks.json',
      {
        schema: {
          operationId: 'getRealmJwks',
          summary: 'Public keys of an iam-internal realm',
          tags: ['identity'],
          params: { type: 'object', properties: { realm: { type: 'string' } } },
          response: {
            200: { description: 'a JWK set (RFC 7517 §5)', type: 'object', properties: { keys: { type: 'array', items: { type: 'object', additionalProperties: { type: 'string' } } } } },
            ...errorResponses(['not_found']),
          },
        },
      },
      async (req, reply) => {
        const jwks = await ctx.identity.jwks(req.params.realm);
        return reply.header('cache-control', 'public, max-age=60').send(jwks);
      },
    );
  };
}
