/**
 * Builds the OpenAPI 3 document from the routes' own schemas (collected by an onRoute
 * hook), so the document cannot drift from what the server validates.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERROR_CODES } from '../errors.ts';

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    tags?: string[];
    consumes?: string[];
    /** A body documented in OpenAPI but not validated by ajv (bundle uploads). */
    'x-body'?: unknown;
  }
}

interface Collected {
  method: string;
  url: string;
  schema: Record<string, any>;
}

export function collectRoutes(app: FastifyInstance): Collected[] {
  const routes: Collected[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (m === 'HEAD' || route.url === '/openapi.json') continue;
      routes.push({ method: m.toLowerCase(), url: route.url, schema: (route.schema ?? {}) as Record<string, any> });
    }
  });
  return routes;
}

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' } } } },
};

export function openApiDocument(routes: Collected[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const params = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries((r.schema.response ?? {}) as Record<string, unknown>)) {
      responses[status] = { description: (schema as { description?: string }).description ?? 'success', content: { 'application/json': { schema } } };
    }
    responses.default = { description: 'error', content: { 'application/json': { schema: errorSchema } } };
    const op: Record<string, unknown> = { summary: r.schema.summary, tags: r.schema.tags, parameters: params, responses };
    if (r.url.startsWith('/v1/')) op.security = [{ bearer: [] }];
    const body = r.schema.body ?? r.schema['x-body'];
    if (body) op.requestBody = { content: { [r.schema.consumes?.[0] ?? 'application/json']: { schema: body } } };
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.0.3',
    info: { title: 'isohost', version, description: 'Self-hosted runtime host for mini-apps. Errors: { error: { code, message } }.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}
