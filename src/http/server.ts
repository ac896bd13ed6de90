/**
 * buildServer() returns the fastify instance without listening (fastify habit: routes
 * are plugins, tested with inject()). Every response carries `x-request-id`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
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
    disableRequestLogging: true,
    bodyLimit: options.maxArgsBytes ?? 1024 * 1024,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 200 },
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
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  const routes = collectRoutes(app);
  await app.register(opsRoutes(ctx));
  await app.register(appRoutes(ctx));
  await app.register(instanceRoutes(ctx));
  const doc = openApiDocument(routes, '0.1.0');
  app.get('/openapi.json', async () => doc);
  return app;
}
