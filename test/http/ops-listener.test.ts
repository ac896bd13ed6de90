/**
 * The operations surface (issue 9.4): with `deployment.ops_listen`, /healthz, /readyz and
 * /metrics answer on their own listener and not on the public API; call metrics carry the
 * app; /readyz answers 503 `{"status":"draining"}` once the server drains.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpsServer } from '../../src/http/ops-server.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

let s: TestServer;
let ops: FastifyInstance;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha' }, { id: 'beta' }], deployment: { ops_listen: { host: '127.0.0.1', port: 0 } } });
  await s.deploy('alpha', 'one', bundleOf({ ping: () => 'pong' }));
  await s.deploy('alpha', 'two', bundleOf({ ping: () => 'pong', fail: () => { throw new Error('no'); } }));
  ops = await buildOpsServer(s.app);
});
afterAll(async () => {
  await ops?.close();
  await s?.dispose();
});

describe('ops_listen', () => {
  it('should not serve /metrics, /healthz or /readyz on the public API listener', async () => {
    for (const url of ['/metrics', '/healthz', '/readyz']) expectError(await s.inject({ method: 'GET', url }), 404, 'not_found');
    // The public API itself still answers.
    expect((await s.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
  });

  it('should serve them on a real socket of its own', async () => {
    const address = await ops.listen({ host: '127.0.0.1', port: 0 });
    expect(await (await fetch(`${address}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${address}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { config: 'ok', storage: 'ok' } });
    const metrics = await fetch(`${address}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toContain('# TYPE isohost_calls_total counter');
    expect((await fetch(`${address}/v1/tenants/alpha/apps`)).status).toBe(404);
  });

  it('should count calls by tenant, app and code, with latency by tenant and app', async () => {
    expect(resultOf(await s.oneShot('alpha', 'one', 'ping', {}))).toBe('pong');
    const id = await s.launch('alpha', 'two');
    expect(resultOf(await s.call('alpha', id, 'ping', {}))).toBe('pong');
    expectError(await s.call('alpha', id, 'fail', {}), 422, 'miniapp_error');
    const text = (await ops.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/^isohost_calls_total\{tenant="alpha",app="one",code="ok"\} 1$/m);
    expect(text).toMatch(/^isohost_calls_total\{tenant="alpha",app="two",code="ok"\} 1$/m);
    expect(text).toMatch(/^isohost_calls_total\{tenant="alpha",app="two",code="miniapp_error"\} 1$/m);
    expect(text).toMatch(/^isohost_call_duration_seconds_count\{tenant="alpha",app="two"\} 2$/m);
    expect(text).toMatch(/^isohost_call_duration_seconds_count\{tenant="alpha",app="one"\} 1$/m);
  });

  it('should answer /readyz with 503 draining once the server drains', async () => {
    s.app.isohost.draining = true;
    try {
      const res = await ops.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'draining' });
      expect((await ops.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      s.app.isohost.draining = false;
    }
    expect((await ops.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});

describe('without ops_listen', () => {
  it('should serve /readyz on the API listener and answer 503 draining there', async () => {
    const plain = await startTestServer({ tenants: [{ id: 'alpha' }] });
    try {
      expect((await plain.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      expect((await plain.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
      plain.app.isohost.draining = true;
      const res = await plain.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'draining' });
    } finally {
      await plain.dispose();
    }
  });
});
