/**
 * Issue 11, "isolate failures classified by state, not text": the host used to map an
 * isolate failure to a code by matching its message (`/timed out/`, `/memory limit/`,
 * `/disposed/`) — text a guest can write. Now the code comes from state the host owns:
 * its own deadline fired, isolated-vm disposed the isolate (which it does only for its
 * memory limit), or the host disposed it. A guest throwing those messages, from a
 * method or from top-level code, gets `miniapp_error` / `invalid_request`, and its
 * instance lives on. Real limit breaches still get their codes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACKER, type AttackServer, missesOf, startAttackServer } from '../helpers/attack-server.ts';

const MESSAGES = ['request timed out', 'Script execution timed out.', 'Isolate was disposed during execution due to memory limit', 'Isolate was disposed during execution'];

let s: AttackServer;
beforeAll(async () => {
  s = await startAttackServer({ memory_mb: 32 });
});
afterAll(() => s.close());

describe('failures classified by state, never by text', () => {
  it.each(MESSAGES)('should answer a method that throws "%s" with miniapp_error, the instance still live', async (message) => {
    const appId = `says-${MESSAGES.indexOf(message)}`;
    expect((await s.deploy(ATTACKER, appId, `export function boom() { throw new Error(${JSON.stringify(message)}); }\nexport function ok() { return 1; }`)).status).toBe(201);
    const launched = await s.request('POST', `/v1/tenants/${ATTACKER}/apps/${appId}/instances`, { tenant: ATTACKER });
    expect(launched.status).toBe(201);
    const path = `/v1/tenants/${ATTACKER}/instances/${launched.body.instance}/calls`;
    const thrown = await s.request('POST', `${path}/boom`, { tenant: ATTACKER, body: 'null', contentType: 'application/json' });
    expect(thrown.status).toBe(422);
    expect(thrown.body.error).toMatchObject({ code: 'miniapp_error', message: expect.stringContaining(message) });
    // Not disposed as if it had breached a limit: the same instance answers the next call.
    expect((await s.request('POST', `${path}/ok`, { tenant: ATTACKER, body: 'null', contentType: 'application/json' })).body).toEqual({ result: 1 });
  });

  it.each(MESSAGES)('should refuse a bundle whose top-level code throws "%s" as invalid_request', async (message) => {
    const res = await s.deploy(ATTACKER, `top-${MESSAGES.indexOf(message)}`, `throw new Error(${JSON.stringify(message)});\nexport function f() {}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining(message) });
  });

  it('should still answer real breaches with their codes: CPU → timeout, memory → resource_exhausted', async () => {
    const app = 'export function spin() { for (;;) {} }\nexport function hog() { const a = []; for (;;) a.push(new Array(1e5).fill(1)); }';
    expect((await s.deploy(ATTACKER, 'breaches', app)).status).toBe(201);
    const { result: spun, watch } = await s.during(() => s.call(ATTACKER, 'breaches', 'spin'));
    expect(missesOf(watch)).toEqual([]);
    expect(spun.body.error.code).toBe('timeout');
    const hogged = await s.call(ATTACKER, 'breaches', 'hog');
    expect(['resource_exhausted', 'timeout']).toContain(hogged.body.error.code);
    const topLevelHog = await s.deploy(ATTACKER, 'hog-at-load', 'const a = []; for (;;) a.push(new Array(1e5).fill(1));\nexport function f() {}');
    expect(['resource_exhausted', 'timeout']).toContain(topLevelHog.body.error.code);
    const topLevelSpin = await s.deploy(ATTACKER, 'spin-at-load', 'for (;;) {}\nexport function f() {}');
    expect(topLevelSpin.body.error.code).toBe('timeout');
  });
});
