/**
 * Operations endpoints (CONTRACT §4): liveness, readiness with the deployment facts, Prometheus
 * metrics, realm JWKS (public parts only) through a key rotation, and the JSON 404 for unknown routes. Every response carries an x-request-id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/http/server.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha' }, { id: 'beta', isolation: 'database' }], deployment: { data_residency: 'eu-test-1' } });
  await s.deploy('alpha', 'demo', bundleOf({ ping: () => 'pong' }));
});
afterAll(() => s?.dispose());

const get = (url: string, headers: Record<string, string> = {}) => s.inject({ method: 'GET', url, headers });
const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;

describe('ops endpoints', () => {
  it('should answer /healthz with 200 and a request id', async () => {
    const res = await get('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('should echo a well-formed x-request-id and replace a malformed one', async () => {
    expect((await get('/healthz', { 'x-request-id': 'trace-123.abc_DEF' })).headers['x-request-id']).toBe('trace-123.abc_DEF');
    for (const bad of ['has space', 'x'.repeat(129), 'new\\nline', '<script>']) {
      expect((await get('/healthz', { 'x-request-id': bad })).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('should answer /readyz with 200, its checks and deployment.data_residency', async () => {
    const res = await get('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      status: 'ready',
      checks: { config: 'ok', storage: 'ok' },
      deployment: { mode: 'on-premise', data_residency: 'eu-test-1', control_plane: 'self-managed', egress: 'deny-by-default' },
    });
  });

  it('should answer /readyz with 503 and the failing check when a probe fails', async () => {
    const app = await buildServer({ platform: s.platform, identity: s.identity, readiness: { egress_proxy: () => Promise.reject(new Error('down')) } });
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not_ready', checks: { config: 'ok', storage: 'ok', egress_proxy: 'failing' } });
      expect(res.body).not.toContain('down');
    } finally {
      await app.close();
    }
  });

  it('should serve Prometheus text with isohost_calls_total after a call', async () => {
    expect(resultOf(await s.oneShot('alpha', 'demo', 'ping', {}))).toBe('pong');
    expectError(await s.oneShot('alpha', 'demo', 'nope', {}), 404, 'not_found');
    const res = await get('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('# TYPE isohost_calls_total counter');
    expect(res.body).toMatch(/^isohost_calls_total\{tenant="alpha",app="demo",code="ok"\} 1$/m);
    expect(res.body).toMatch(/^isohost_calls_total\{tenant="alpha",app="demo",code="not_found"\} 1$/m);
    expect(res.body).toMatch(/^isohost_call_duration_seconds_count\{tenant="alpha",app="demo"\} 2$/m);
    expect(res.body).toMatch(/^isohost_live_instances\{tenant="beta"\} 0$/m);
    expect(res.body).toContain('isohost_storage_bytes');
  });

  it('should serve the public keys of an iam-internal realm without private parts', async () => {
    const token = await s.token('alpha');
    const res = await get('/realms/alpha/.well-known/jwks.json');
    expect(res.statusCode).toBe(200);
    const { keys } = res.json() as { keys: Record<string, string>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), kid: kidOf(token), alg: 'EdDSA', use: 'sig' });
    expect(res.body).not.toMatch(/"d"|"p"|"q"|"k"/);
  });

  it('should answer 404 not_found for an unknown realm, without naming tenants', async () => {
    for (const realm of ['nobody', '..', 'ALPHA', '%2e%2e', 'alpha%00']) {
      const res = await get(`/realms/${realm}/.well-known/jwks.json`);
      expect(res.statusCode, realm).toBe(404);
      expect(expectError(res, 404, 'not_found')).not.toMatch(/alpha|beta/);
    }
  });

  it('should rotate: old tokens still verify, new tokens carry the new kid, the JWKS lists both', async () => {
    const oldToken = await s.token('beta', 'alice');
    const oldKid = kidOf(oldToken);
    const rotated = await s.identity.rotate('beta');
    const newToken = await s.token('beta', 'alice');
    expect(kidOf(newToken)).toBe(rotated.kid);
    expect(rotated.kid).not.toBe(oldKid);
    for (const t of [oldToken, newToken]) expect((await get('/v1/tenants/beta/apps', bearer(t))).statusCode).toBe(200);
    const { keys } = (await get('/realms/beta/.well-known/jwks.json')).json() as { keys: { kid: string }[] };
    expect(keys.map((k) => k.kid).sort()).toEqual([oldKid, rotated.kid].sort());
    // Retiring the old key ends the old tokens at once, through the server's verifier.
    await s.identity.retire('beta', oldKid);
    expectError(await get('/v1/tenants/beta/apps', bearer(oldToken)), 401, 'unauthenticated');
    expect((await get('/v1/tenants/beta/apps', bearer(newToken))).statusCode).toBe(200);
    expect(((await get('/realms/beta/.well-known/jwks.json')).json() as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toEqual([rotated.kid]);
  });
});

describe('unknown routes', () => {
  it('should answer 404 with the JSON error shape and a request id', async () => {
    for (const [method, url] of [['GET', '/'], ['GET', '/v2/tenants/alpha/apps'], ['POST', '/healthz'], ['PATCH', '/v1/tenants/alpha/apps/demo'], ['GET', '/v1/tenants/alpha/instances/x']] as const) {
      const res = await s.inject({ method, url });
      expect(expectError(res, 404, 'not_found')).toContain(url);
    }
  });

  it('should answer a malformed URL and an overlong path parameter with the JSON error shape', async () => {
    const token = await s.token('alpha');
    for (const url of ['/v1/tenants/%zz/apps', `/v1/tenants/alpha/instances/${'i'.repeat(250)}/calls/ping`, `/v1/tenants/${'a'.repeat(300)}/apps`]) {
      const res = await s.inject({ method: url.includes('calls') ? 'POST' : 'GET', url, headers: bearer(token) });
      expect([400, 404]).toContain(res.statusCode);
      expectError(res, res.statusCode, res.statusCode === 400 ? 'invalid_request' : 'not_found');
    }
  });

  it('should not echo the query string in the 404 message', async () => {
    const res = await get(`/nope?token=${'secret'.repeat(3)}`);
    expect(expectError(res, 404, 'not_found')).not.toContain('secret');
  });
});
