/**
 * The HTTP contract of issue 11: authentication before the body is read (401 outranks
 * 400/413/415), 415 for a body type the route does not take (call routes take JSON only),
 * Retry-After on 429, and an OpenAPI document generated from the routes that validates
 * and lists every registered route.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

const ARGS_LIMIT = 4096;
const APP = bundleOf({
  typeOf: (args: unknown) => typeof args,
  spin: () => {
    for (;;);
  },
  ping: () => 'pong',
});

let s: TestServer;
let instance: string;
beforeAll(async () => {
  s = await startTestServer({
    tenants: [
      { id: 'alpha' },
      // rate 0.1/s: the bucket starts with 0.2 tokens, so the first call waits ~8 s for one.
      { id: 'slow', limits: { rate_per_sec: 0.1 } },
      { id: 'breaker', limits: { cpu_ms: 20, breaches_per_min: 1 } },
    ],
    maxArgsBytes: ARGS_LIMIT,
  });
  for (const t of ['alpha', 'breaker']) await s.deploy(t, 'app', APP);
  instance = await s.launch('alpha', 'app');
});
afterAll(() => s?.dispose());

describe('authentication comes before the body', () => {
  const bodies: [string, string, string][] = [
    ['an invalid JSON body (400 otherwise)', '{"a":', 'application/json'],
    ['a body over the size limit (413 otherwise)', JSON.stringify({ x: 'y'.repeat(ARGS_LIMIT * 2) }), 'application/json'],
    ['a text/plain body (415 otherwise)', 'hello', 'text/plain'],
  ];
  for (const [name, payload, type] of bodies) {
    it(`should answer 401 to an unauthenticated call with ${name}`, async () => {
      for (const url of ['/v1/tenants/alpha/apps/app/calls/ping', `/v1/tenants/alpha/instances/${instance}/calls/ping`]) {
        expectError(await s.inject({ method: 'POST', url, headers: { 'content-type': type }, payload }), 401, 'unauthenticated');
      }
    });
  }

  it('should answer 401 to an unauthenticated upload over the bundle limit or of the wrong type', async () => {
    const url = '/v1/tenants/alpha/apps/x';
    const huge = 'x'.repeat(6 * 1024 * 1024);
    expectError(await s.inject({ method: 'PUT', url, headers: { 'content-type': 'application/javascript' }, payload: huge }), 401, 'unauthenticated');
    expectError(await s.inject({ method: 'PUT', url, headers: { 'content-type': 'image/png' }, payload: 'x' }), 401, 'unauthenticated');
    // The same bodies with a token get the body's own error (control).
    const auth = bearer(await s.token('alpha'));
    expectError(await s.inject({ method: 'PUT', url, headers: { ...auth, 'content-type': 'application/javascript' }, payload: huge }), 413, 'payload_too_large');
  });
});

describe('content types', () => {
  it('should answer 415 unsupported_media_type to a text/plain call instead of passing a string to the mini-app', async () => {
    const auth = bearer(await s.token('alpha'));
    for (const url of ['/v1/tenants/alpha/apps/app/calls/typeOf', `/v1/tenants/alpha/instances/${instance}/calls/typeOf`]) {
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'application/x-www-form-urlencoded']) {
        expectError(await s.inject({ method: 'POST', url, headers: { ...auth, 'content-type': type }, payload: '{"a":1}' }), 415, 'unsupported_media_type');
      }
      expect(resultOf(await s.inject({ method: 'POST', url, headers: { ...auth, 'content-type': 'application/json; charset=utf-8' }, payload: '{"a":1}' }))).toBe('object');
    }
  });
});

describe('429 carries Retry-After', () => {
  it('should say when the rate bucket admits the next call', async () => {
    // Uploads may pass the tenant's gate too (their validation runs the bundle): the first
    // of upload and call that the empty bucket refuses is the answer under test.
    const upload = await s.inject({
      method: 'PUT',
      url: '/v1/tenants/slow/apps/app',
      headers: { ...bearer(await s.token('slow')), 'content-type': 'application/javascript' },
      payload: APP,
    });
    const res = upload.statusCode === 429 ? upload : await s.oneShot('slow', 'app', 'ping', {});
    expectError(res, 429, 'resource_exhausted');
    const seconds = Number(res.headers['retry-after']);
    expect(seconds).toBeGreaterThanOrEqual(7);
    expect(seconds).toBeLessThanOrEqual(8);
  });

  it('should say when the breach window admits the next call', async () => {
    // Burst 3 breaches, then refusals; with 1 breach/min the window reopens in ~60 s.
    for (let i = 0; i < 3; i++) expectError(await s.oneShot('breaker', 'app', 'spin', {}), 504, 'timeout');
    const res = await s.oneShot('breaker', 'app', 'ping', {});
    expectError(res, 429, 'resource_exhausted');
    const seconds = Number(res.headers['retry-after']);
    expect(seconds).toBeGreaterThanOrEqual(55);
    expect(seconds).toBeLessThanOrEqual(60);
  });
});

/**
 * `method {path}` for every route fastify registered (HEAD aside), read from printRoutes'
 * tree: each line is a path segment under the nearest line above it indented less.
 */
function registeredRoutes(tree: string): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│├└─\s]*?)(\/\S*)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = m[1]!.length / 4 - 1;
    stack.length = depth;
    const url = (depth > 0 ? stack[depth - 1]! : '') + m[2]!;
    stack.push(url);
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD')) routes.push(`${method.toLowerCase()} ${url.replace(/:([A-Za-z]+)/g, '{$1}')}`);
  }
  return routes;
}

describe('/openapi.json', () => {
  interface Operation {
    operationId?: string;
    security?: unknown;
    requestBody?: { content: Record<string, unknown> };
    responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }>;
  }
  let doc: { openapi: string; paths: Record<string, Record<string, Operation>> };
  beforeAll(async () => {
    const res = await s.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  const op = (method: string, path: string) => doc.paths[path]?.[method]!;

  it('should be a valid OpenAPI 3 document', async () => {
    expect(doc.openapi).toMatch(/^3\./);
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it('should describe every registered route, each with its own operationId', () => {
    const registered = registeredRoutes(s.app.printRoutes({ commonPrefix: false }));
    expect(registered.length).toBeGreaterThanOrEqual(10);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    expect(documented.sort()).toEqual(registered.sort());
    const ids = documented.map((d) => op(...(d.split(' ') as [string, string])).operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('should document the call bodies as JSON, 204 on DELETE and /metrics as text/plain', () => {
    for (const path of ['/v1/tenants/{tenant}/apps/{app}/calls/{method}', '/v1/tenants/{tenant}/instances/{instance}/calls/{method}']) {
      expect(Object.keys(op('post', path).requestBody!.content)).toEqual(['application/json']);
    }
    expect(Object.keys(op('put', '/v1/tenants/{tenant}/apps/{app}').requestBody!.content)).toEqual(['application/javascript']);
    expect(Object.keys(op('delete', '/v1/tenants/{tenant}/instances/{instance}').responses)).toContain('204');
    expect(Object.keys(op('get', '/metrics').responses['200']!.content!)).toEqual(['text/plain']);
  });

  it('should give every error response the error schema, and /v1 routes the bearer requirement', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, o] of Object.entries(ops)) {
        if (path.startsWith('/v1/')) {
          expect(o.security, path).toEqual([{ bearer: [] }]);
          for (const status of ['401', '403', '404', '429']) expect(Object.keys(o.responses), `${method} ${path}`).toContain(status);
        }
        for (const [status, r] of Object.entries(o.responses)) {
          if (Number(status) < 400 || path === '/readyz') continue;
          const schema = r.content?.['application/json']?.schema as { required?: string[]; properties?: { error?: unknown } } | undefined;
          expect(schema?.required, `${method} ${path} ${status}`).toEqual(['error']);
          expect(schema?.properties?.error).toBeDefined();
        }
      }
    }
  });
});
