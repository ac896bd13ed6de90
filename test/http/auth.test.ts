/**
 * Bearer authentication on every /v1 route (CONTRACT §4, THREATS §C 19–27), table-driven:
 * each route × each bad credential → 401 `unauthenticated`; a verified token without the
 * route's scope → 403 `forbidden`. Real realms on disk, real signed JWTs.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, startTestServer, type TestServer } from '../helpers/http-server.ts';
import { BAD_CREDENTIALS } from '../helpers/http-tokens.ts';

const VICTIM = 'alpha';
const OTHER = 'beta';
const DEMO = bundleOf({ ping: () => 'pong' });
const EVIL = bundleOf({ ping: () => 'evil' });

let s: TestServer;
let instance: string;

beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: VICTIM, isolation: 'schema' }, { id: OTHER, isolation: 'database' }] });
  await s.deploy(VICTIM, 'demo', DEMO);
  await s.deploy(OTHER, 'demo', DEMO);
  instance = await s.launch(VICTIM, 'demo', 'alice');
});
afterAll(() => s?.dispose());

interface RouteCase {
  name: string;
  scope: 'apps:call' | 'apps:deploy';
  okStatus: number;
  request(tenant: string, instanceId: string): InjectOptions;
}

const json = { 'content-type': 'application/json' };
const ROUTES: RouteCase[] = [
  {
    name: 'PUT /v1/tenants/:tenant/apps/:app',
    scope: 'apps:deploy',
    okStatus: 201,
    request: (t) => ({ method: 'PUT', url: `/v1/tenants/${t}/apps/upload`, headers: { 'content-type': 'application/javascript' }, payload: EVIL }),
  },
  { name: 'GET /v1/tenants/:tenant/apps', scope: 'apps:deploy', okStatus: 200, request: (t) => ({ method: 'GET', url: `/v1/tenants/${t}/apps` }) },
  { name: 'POST /v1/tenants/:tenant/apps/:app/instances', scope: 'apps:call', okStatus: 201, request: (t) => ({ method: 'POST', url: `/v1/tenants/${t}/apps/demo/instances` }) },
  {
    name: 'POST /v1/tenants/:tenant/instances/:instance/calls/:method',
    scope: 'apps:call',
    okStatus: 200,
    request: (t, i) => ({ method: 'POST', url: `/v1/tenants/${t}/instances/${i}/calls/ping`, headers: json, payload: '{}' }),
  },
  { name: 'DELETE /v1/tenants/:tenant/instances/:instance', scope: 'apps:call', okStatus: 204, request: (t, i) => ({ method: 'DELETE', url: `/v1/tenants/${t}/instances/${i}` }) },
  {
    name: 'POST /v1/tenants/:tenant/apps/:app/calls/:method',
    scope: 'apps:call',
    okStatus: 200,
    request: (t) => ({ method: 'POST', url: `/v1/tenants/${t}/apps/demo/calls/ping`, headers: json, payload: '{}' }),
  },
];

function withAuth(opts: InjectOptions, authorization: string | undefined): InjectOptions {
  const headers = { ...(opts.headers as Record<string, string> | undefined) };
  if (authorization !== undefined) headers.authorization = authorization;
  return { ...opts, headers };
}

describe.each(ROUTES)('$name', (route) => {
  it('should accept a valid token of the tenant with the scope (control)', async () => {
    const target = route.okStatus === 204 ? await s.launch(VICTIM, 'demo', 'alice') : instance;
    const res = await s.inject(withAuth(route.request(VICTIM, target), `Bearer ${await s.token(VICTIM, 'alice', route.scope)}`));
    expect({ status: res.statusCode, body: res.body }).toMatchObject({ status: route.okStatus });
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  for (const cred of BAD_CREDENTIALS) {
    it(`should answer 401 unauthenticated to ${cred.name}`, async () => {
      const authorization = await cred.make(s, VICTIM, OTHER);
      const res = await s.inject(withAuth(route.request(VICTIM, instance), authorization));
      const message = expectError(res, 401, 'unauthenticated');
      expect(message).toBe(cred.reason);
      for (const part of (authorization ?? '').split(/[ .]/)) if (part.length > 8) expect(message).not.toContain(part);
    });
  }

  it('should take the Bearer scheme name case-insensitively (RFC 7235 §2.1)', async () => {
    for (const scheme of ['bearer', 'BEARER']) {
      const target = route.okStatus === 204 ? await s.launch(VICTIM, 'demo', 'alice') : instance;
      const res = await s.inject(withAuth(route.request(VICTIM, target), `${scheme} ${await s.token(VICTIM, 'alice', route.scope)}`));
      expect(res.statusCode, res.body).toBe(route.okStatus);
    }
  });

  it('should answer 401 for a tenant that does not exist, as for a bad token', async () => {
    const res = await s.inject(withAuth(route.request('nobody', instance), `Bearer ${await s.token(VICTIM)}`));
    expectError(res, 401, 'unauthenticated');
  });

  it('should answer 403 forbidden to a verified token without the scope', async () => {
    const wrong = route.scope === 'apps:call' ? 'apps:deploy' : 'apps:call';
    for (const scope of [wrong, '', 'apps:call:extra apps:deploy:extra', 'APPS:CALL APPS:DEPLOY']) {
      const res = await s.inject(withAuth(route.request(VICTIM, instance), `Bearer ${await s.token(VICTIM, 'alice', scope)}`));
      expect(expectError(res, 403, 'forbidden')).toContain(route.scope);
    }
  });
});

describe('after every rejected request', () => {
  it('should have changed nothing: the instance lives and each app has only its good upload', async () => {
    const res = await s.inject({ method: 'POST', url: `/v1/tenants/${VICTIM}/instances/${instance}/calls/ping`, headers: bearer(await s.token(VICTIM, 'alice')) });
    expect(res.json()).toEqual({ result: 'pong' });
    const list = await s.inject({ method: 'GET', url: `/v1/tenants/${VICTIM}/apps`, headers: bearer(await s.token(VICTIM)) });
    const apps = (list.json() as { apps: { app: string; versions: unknown[] }[] }).apps;
    // 'upload' got exactly one version, from the control request with a good token.
    expect(apps.map((a) => [a.app, a.versions.length])).toEqual([['demo', 1], ['upload', 1]]);
  });
});
