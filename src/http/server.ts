/**
 * buildServer() returns the fastify instance without listening (fastify habit: routes
 * are plugins, tested with inject()). Every response carries `x-request-id`.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Identity } from '../identity/registry.ts';
import type { Platform } from '../platform.ts';
import { OneShotCaller } from '../sandbox/one-shot.ts';
import type { ServerContext } from './context.ts';
import { installErrorHandling } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { collectRoutes, openApiDocument } from './openapi.ts';
import { appRoutes } from './routes/apps.ts';
import { instanceRoutes } from './routes/instances.ts';
import { opsRoutes } from './routes/ops.ts';
import type { Registry } from 'prom-client';
import { IsohostError } from '../errors.ts';

export interface ServerOptions {
  platform: Platform;
  identity: Identity;
  logger?: Logger;
  registry?: Registry;
  readiness?: ServerContext['readiness'];
  maxArgsBytes?: number;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger ?? options.platform.logger.child({ component: 'http' }),
    // No per-request log lines: calls are counted in /metrics, errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxArgsBytes ?? 1024 * 1024,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 200 },
    // Errors fastify raises before routing (a malformed URL, an overlong path
    // parameter) get our error shape and request id too, without echoing the path.
    frameworkErrors: (err, req, res) => {
      // Typed loosely: fastify's generic reply type has no route schema to resolve here.
      const reply = res as unknown as { header(k: string, v: string): typeof reply; status(n: number): typeof reply; send(b: unknown): void };
      reply
        .header('x-request-id', req.id)
        .status(400)
        .send(new IsohostError('invalid_request', err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : 'malformed URL').toJSON());
    },
  }) as unknown as FastifyInstance;
  const ctx: ServerContext = {
    platform: options.platform,
    identity: options.identity,
    metrics: createMetrics(options.platform, options.registry),
    oneShot: new OneShotCaller(options.platform.host),
    readiness: options.readiness ?? {},
    maxArgsBytes: options.maxArgsBytes ?? 1024 * 1024,
  };
  installErrorHandling(app);
  // Callback-style (not async): no promise per request for one header.
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  const routes = collectRoutes(app);
  await app.register(opsRoutes(ctx));
  await app.register(appRoutes(ctx));
  await app.register(instanceRoutes(ctx));
  const doc = openApiDocument(routes, '0.1.0');
  app.get('/openapi.json', async () => doc);
  return app;
}
