/**
 * Options for @fastify/swagger, which builds `/openapi.json` from the routes' own schemas.
 * The transform adds what a route schema does not say by itself: the bearer requirement
 * of /v1 routes, path parameters a route does not validate, and bodies that are
 * documented but not validated by ajv (`x-body`: bundle bytes, JSON args of any shape).
 */
import type { SwaggerOptions } from '@fastify/swagger';

declare module 'fastify' {
  interface FastifySchema {
    /** A body documented in OpenAPI but not validated by ajv (bundle uploads, JSON args). */
    'x-body'?: unknown;
  }
}

const PATH_PARAM = /:([A-Za-z]+)/g;

export function openApiOptions(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'isohost',
        version: '0.2.0',
        description: 'Self-hosted runtime host for mini-apps. Errors: { "error": { "code", "message" } }; a 429 carries Retry-After.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: ({ schema, url }) => {
      const { 'x-body': documentedBody, ...rest } = (schema ?? {}) as Record<string, unknown>;
      const out: Record<string, unknown> = { ...rest };
      if (documentedBody !== undefined && out.body === undefined) out.body = documentedBody;
      if (out.params === undefined) {
        const names = [...url.matchAll(PATH_PARAM)].map((m) => m[1]!);
        if (names.length > 0) out.params = { type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'string' }])) };
      }
      if (url.startsWith('/v1/')) out.security = [{ bearer: [] }];
      return { schema: out as never, url };
    },
  };
}
