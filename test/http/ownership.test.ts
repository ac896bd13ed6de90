/**
 * An instance belongs to the tenant and subject that launched it (CONTRACT §4): under any
 * other subject of the same tenant, or any subject of another tenant, call and DELETE are
 * `not_found` — the same answer as for an id that never existed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

const APP = bundleOf({ ping: () => 'pong' });

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha' }, { id: 'beta', isolation: 'database' }] });
  await s.deploy('alpha', 'demo', APP);
  await s.deploy('beta', 'demo', APP);
});
afterAll(() => s?.dispose());

const del = async (tenant: string, instance: string, sub: string) =>
  s.inject({ method: 'DELETE', url: `/v1/tenants/${tenant}/instances/${instance}`, headers: bearer(await s.token(tenant, sub)) });

describe('instance ownership', () => {
  it('should answer 404 not_found to bob of the same tenant on call and DELETE', async () => {
    const id = await s.launch('alpha', 'demo', 'alice');
    expectError(await s.call('alpha', id, 'ping', {}, 'bob'), 404, 'not_found');
    expectError(await del('alpha', id, 'bob'), 404, 'not_found');
    expect(resultOf(await s.call('alpha', id, 'ping', {}, 'alice'))).toBe('pong');
  });

  it("should answer 404 not_found to any subject of another tenant on its own path", async () => {
    const id = await s.launch('alpha', 'demo', 'alice');
    for (const sub of ['alice', 'bob']) {
      expectError(await s.call('beta', id, 'ping', {}, sub), 404, 'not_found');
      expectError(await del('beta', id, sub), 404, 'not_found');
    }
    expect(resultOf(await s.call('alpha', id, 'ping', {}, 'alice'))).toBe('pong');
  });

  it('should give a foreign instance the same answer as an id that never existed', async () => {
    const id = await s.launch('alpha', 'demo', 'alice');
    const foreign = (await s.call('alpha', id, 'ping', {}, 'bob')).json();
    const unknown = (await s.call('alpha', 'i_doesnotexist000000000000', 'ping', {}, 'bob')).json();
    expect(foreign).toEqual(unknown);
  });

  it('should let the owner DELETE with 204, after which the instance is not_found', async () => {
    const id = await s.launch('alpha', 'demo', 'alice');
    const res = await del('alpha', id, 'alice');
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expectError(await s.call('alpha', id, 'ping', {}, 'alice'), 404, 'not_found');
    expectError(await del('alpha', id, 'alice'), 404, 'not_found');
  });

  it('should return the launched app and version on POST instances', async () => {
    const res = await s.inject({ method: 'POST', url: '/v1/tenants/alpha/apps/demo/instances', headers: bearer(await s.token('alpha', 'alice', 'apps:call')) });
    expect(res.statusCode).toBe(201);
    const body = res.json() as { instance: string; app: string; version: string };
    expect(body).toMatchObject({ app: 'demo', version: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(body.instance).toMatch(/^i_[A-Za-z0-9_-]{24}$/);
  });

  it('should answer 404 to launching an app the tenant does not have', async () => {
    const res = await s.inject({ method: 'POST', url: '/v1/tenants/alpha/apps/missing/instances', headers: bearer(await s.token('alpha')) });
    expectError(res, 404, 'not_found');
  });
});
