/**
 * Calls over HTTP (CONTRACT §4): results and args pass through as JSON, a mini-app throw is
 * `miniapp_error` with its bundle line, unknown methods are `not_found`, a runaway loop is
 * `timeout` while the server keeps answering, and bad bodies are 400/413.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

const ARGS_LIMIT = 16 * 1024;
const APP = bundleOf({
  add: (args: { a: number; b: number }) => args.a + args.b,
  echo: (args: unknown) => args,
  nothing: () => undefined,
  fail: () => {
    throw new Error('boom from the mini-app');
  },
  spin() {
    for (;;);
  },
});
const FAIL_LINE = APP.split('\n').findIndex((l) => l.includes('boom from the mini-app')) + 1;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha', limits: { cpu_ms: 300, wall_ms: 3000 } }], maxArgsBytes: ARGS_LIMIT });
  await s.deploy('alpha', 'calc', APP);
});
afterAll(() => s?.dispose());

const raw = async (url: string, payload: string, contentType = 'application/json') =>
  s.inject({ method: 'POST', url, headers: { ...bearer(await s.token('alpha')), 'content-type': contentType }, payload });

describe('POST calls', () => {
  it('should answer 200 {result} for a method, on an instance and one-shot', async () => {
    const id = await s.launch('alpha', 'calc');
    const res = await s.call('alpha', id, 'add', { a: 2, b: 40 });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ result: 42 });
    expect(resultOf(await s.oneShot('alpha', 'calc', 'add', { a: -1, b: 1 }))).toBe(0);
  });

  it('should pass JSON args through unchanged', async () => {
    const id = await s.launch('alpha', 'calc');
    const values = [{ nested: { list: [1, 'two', null, true, { deep: 'ünïcødé ✓ 🚀' }] } }, [1, 2, 3], 'text', 3.5, -0.25, null, false, {}];
    for (const value of values) expect(resultOf(await s.call('alpha', id, 'echo', value))).toEqual(value);
  });

  it('should pass null when there is no body, and null for undefined results', async () => {
    const id = await s.launch('alpha', 'calc');
    expect(resultOf(await s.call('alpha', id, 'echo'))).toBeNull();
    expect(await s.call('alpha', id, 'nothing', {})).toMatchObject({ statusCode: 200, body: '{"result":null}' });
  });

  it('should answer 422 miniapp_error with the message and the bundle line when the mini-app throws', async () => {
    const id = await s.launch('alpha', 'calc');
    const message = expectError(await s.call('alpha', id, 'fail', {}), 422, 'miniapp_error');
    expect(message).toContain('boom from the mini-app');
    expect(message).toContain(`(bundle line ${FAIL_LINE})`);
    expect(message).not.toMatch(/\/work\/|node_modules|isolated-vm/);
    expect(resultOf(await s.call('alpha', id, 'add', { a: 1, b: 1 }))).toBe(2); // the instance survives a throw
    expectError(await s.oneShot('alpha', 'calc', 'fail', {}), 422, 'miniapp_error');
  });

  it('should answer 404 not_found for an unknown or inherited method', async () => {
    const id = await s.launch('alpha', 'calc');
    for (const method of ['nope', 'constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      expect(expectError(await s.call('alpha', id, method, {}), 404, 'not_found')).not.toContain('at ');
      expectError(await s.oneShot('alpha', 'calc', method, {}), 404, 'not_found');
    }
  });

  it('should answer 400 invalid_request for a method name that is not an identifier', async () => {
    const id = await s.launch('alpha', 'calc');
    for (const method of ['bad-name', '1x', 'a.b', encodeURIComponent('a b')]) expectError(await s.call('alpha', id, method, {}), 400, 'invalid_request');
  });

  it('should answer 504 timeout for a runaway loop while /healthz keeps answering 200', async () => {
    const id = await s.launch('alpha', 'calc');
    let spinDone = false;
    const spin = s.call('alpha', id, 'spin', {}).finally(() => (spinDone = true));
    await new Promise((r) => setTimeout(r, 30));
    const health = await Promise.all([1, 2, 3].map(() => s.inject({ method: 'GET', url: '/healthz' })));
    expect(spinDone).toBe(false);
    for (const h of health) expect(h.json()).toEqual({ status: 'ok' });
    expect(expectError(await spin, 504, 'timeout')).toMatch(/CPU limit of 300 ms|wall limit/);
    // The runaway's isolate is gone; the app works in a new one.
    expectError(await s.call('alpha', id, 'add', { a: 1, b: 1 }), 404, 'not_found');
    expect(resultOf(await s.oneShot('alpha', 'calc', 'add', { a: 1, b: 1 }))).toBe(2);
  });

  it('should answer 504 timeout for a one-shot runaway and serve the next one-shot call', async () => {
    expectError(await s.oneShot('alpha', 'calc', 'spin', {}), 504, 'timeout');
    expect(resultOf(await s.oneShot('alpha', 'calc', 'add', { a: 2, b: 2 }))).toBe(4);
  });

  it('should answer 413 payload_too_large for a JSON args body over the limit', async () => {
    const id = await s.launch('alpha', 'calc');
    const big = JSON.stringify({ text: 'x'.repeat(ARGS_LIMIT) });
    expectError(await raw(`/v1/tenants/alpha/instances/${id}/calls/echo`, big), 413, 'payload_too_large');
    expectError(await raw('/v1/tenants/alpha/apps/calc/calls/echo', big), 413, 'payload_too_large');
    const fits = JSON.stringify({ text: 'x'.repeat(ARGS_LIMIT - 20) });
    expect(resultOf(await raw('/v1/tenants/alpha/apps/calc/calls/echo', fits))).toEqual(JSON.parse(fits));
  });

  it('should answer 400 invalid_request for an invalid JSON body', async () => {
    const id = await s.launch('alpha', 'calc');
    for (const body of ['{"a":', "{'a':1}", 'undefined', '']) {
      expectError(await raw(`/v1/tenants/alpha/instances/${id}/calls/echo`, body), 400, 'invalid_request');
      expectError(await raw('/v1/tenants/alpha/apps/calc/calls/echo', body), 400, 'invalid_request');
    }
  });

  it('should refuse a __proto__ key in the args body rather than pass a poisoned object on', async () => {
    const res = await raw('/v1/tenants/alpha/apps/calc/calls/echo', '{"__proto__":{"admin":true}}');
    expectError(res, 400, 'invalid_request');
  });

  it('should answer 415 unsupported_media_type for a body that is not JSON', async () => {
    expectError(await raw('/v1/tenants/alpha/apps/calc/calls/echo', 'a=1', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type');
  });

  it('should answer 404 not_found for a one-shot call of an app the tenant does not have', async () => {
    expectError(await s.oneShot('alpha', 'missing', 'add', {}), 404, 'not_found');
  });
});
