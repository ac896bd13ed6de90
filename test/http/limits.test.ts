/**
 * Per-tenant admission over HTTP (THREATS B17): a tenant over its instance cap, its call rate
 * or its concurrency gets 429 `resource_exhausted`, while another tenant's calls succeed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

const APP = bundleOf({
  ping: () => 'pong',
  async nap(args: { ms: number }) {
    await new Promise((resolve) => setTimeout(resolve, args.ms));
    return 'rested';
  },
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    tenants: [
      { id: 'capped', limits: { instances: 2 } },
      // burst = 2 x rate = 2 tokens; one more each second.
      { id: 'rated', limits: { rate_per_sec: 1 } },
      // one call at a time, 4 more may wait; the rest are refused.
      { id: 'narrow', isolation: 'database', limits: { concurrency: 1 } },
      { id: 'calm', isolation: 'database' },
      { id: 'leaky', limits: { rate_per_sec: 1, instances: 3 } },
    ],
  });
  for (const t of ['capped', 'rated', 'narrow', 'calm', 'leaky']) await s.deploy(t, 'app', APP);
  // An upload's validation launch takes a rate token too (THREATS F45): let the rated
  // tenants' buckets fill again (2 tokens) before the tests spend them.
  await new Promise((r) => setTimeout(r, 2100));
});
afterAll(() => s?.dispose());

const launchRes = async (tenant: string, sub = 'alice') =>
  s.inject({ method: 'POST', url: `/v1/tenants/${tenant}/apps/app/instances`, headers: bearer(await s.token(tenant, sub)) });

describe('429 resource_exhausted', () => {
  it('should refuse an instance over the tenant instance cap while another tenant launches', async () => {
    const first = await s.launch('capped', 'app', 'alice');
    await s.launch('capped', 'app', 'bob'); // the cap counts the tenant, not the subject
    expect(expectError(await launchRes('capped', 'carol'), 429, 'resource_exhausted')).toMatch(/2 live instances/);
    expect(resultOf(await s.call('calm', await s.launch('calm', 'app'), 'ping', {}))).toBe('pong');
    // Ending one frees a slot.
    const del = await s.inject({ method: 'DELETE', url: `/v1/tenants/capped/instances/${first}`, headers: bearer(await s.token('capped', 'alice')) });
    expect(del.statusCode).toBe(204);
    expect((await launchRes('capped', 'carol')).statusCode).toBe(201);
  });

  it('should refuse a call over the tenant rate while another tenant calls', async () => {
    const id = await s.launch('rated', 'app'); // token 1
    expect(resultOf(await s.call('rated', id, 'ping', {}))).toBe('pong'); // token 2
    expect(expectError(await s.call('rated', id, 'ping', {}), 429, 'resource_exhausted')).toMatch(/rate limit/);
    expectError(await s.oneShot('rated', 'app', 'ping', {}), 429, 'resource_exhausted');
    for (let i = 0; i < 5; i++) expect(resultOf(await s.oneShot('calm', 'app', 'ping', {}))).toBe('pong');
  });

  it('should refuse calls over the tenant concurrency and queue bound while another tenant calls', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await s.launch('narrow', 'app', `user-${i}`));
    const flood = ids.map((id, i) => s.call('narrow', id, 'nap', { ms: 150 }, `user-${i}`));
    await new Promise((r) => setTimeout(r, 20));
    expect(resultOf(await s.oneShot('calm', 'app', 'nap', { ms: 1 }))).toBe('rested');
    const results = await Promise.all(flood);
    const statuses = results.map((r) => r.statusCode).sort();
    // 1 running + 4 waiting (concurrency x 4) are served; the other 3 are refused at once.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    for (const r of results.filter((x) => x.statusCode === 429)) expect(expectError(r, 429, 'resource_exhausted')).toMatch(/too many calls/);
    // Once the flood drains, the tenant is served again.
    expect(resultOf(await s.call('narrow', ids[0]!, 'ping', {}, 'user-0'))).toBe('pong');
  });

  it('should not leak the instances of one-shot calls the rate limit refused', async () => {
    expect(resultOf(await s.oneShot('leaky', 'app', 'ping', {}))).toBe('pong'); // launch + call: both tokens
    for (let i = 0; i < 5; i++) expectError(await s.oneShot('leaky', 'app', 'ping', {}), 429, 'resource_exhausted');
    await new Promise((r) => setTimeout(r, 1100)); // one token refills
    // The tenant is under its rate again; it must not be stuck at its instance cap (3) with orphans.
    expect(resultOf(await s.oneShot('leaky', 'app', 'ping', {}))).toBe('pong');
    const live = (await s.inject({ method: 'GET', url: '/metrics' })).body.match(/isohost_live_instances\{tenant="leaky"\} (\d+)/);
    expect(Number(live?.[1])).toBeLessThanOrEqual(1); // at most the one parked idle instance
  });

  it('should count a refused call in the metrics as resource_exhausted', async () => {
    const text = (await s.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/isohost_calls_total\{tenant="rated",app="app",code="resource_exhausted"\} [1-9]/);
    expect(text).toMatch(/isohost_calls_total\{tenant="calm",app="app",code="ok"\} [1-9]/);
  });
});
