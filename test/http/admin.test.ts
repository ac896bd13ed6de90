/**
 * The admin API of the operator's console (issue 14) through HTTP on a real port, with real
 * operator-realm JWTs: who may call it, the tenants overview fed by real calls, the review
 * queue and a version's source, review, rollout and rollback, the app's recent errors with
 * their bundle lines, egress decisions from the real proxy, the metadata-only log tail, and
 * that no stored value, call argument or result is reachable from any admin route or
 * console file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { startConsoleServer, tenantObject, type ConsoleServer } from '../console/console-server.ts';

declare const fc: any;

/** Unique per run: proves absence, not a lucky miss of a fixed string. */
const SECRET_VALUE = `sv-${crypto.randomUUID()}`;
const SECRET_ARG = `sa-${crypto.randomUUID()}`;

const shopV1 = bundleOf({
  version: () => 1,
  save: async (args: { value: string }) => {
    await fc.storage.set('secret', args.value);
    fc.log.info(`saved ${args.value}`, { value: args.value });
    return { echoed: args.value };
  },
  load: async () => fc.storage.get('secret'),
  fail: (args: { value: string }) => {
    throw new Error(`failed on ${args.value}`);
  },
  spin: () => {
    for (;;);
  },
  reach: async () => {
    try {
      await fc.fetch('https://denied.example.com:8443/x');
      return 'fetched';
    } catch (e: any) {
      return e.code;
    }
  },
});
const shopV2 = bundleOf({ version: () => 2 });

let s: ConsoleServer;
let admin: string;
const v: Record<string, string> = {};

beforeAll(async () => {
  s = await startConsoleServer([
    tenantObject('unit', { limits: { cpu_ms: 20 } }),
    tenantObject('acme', { review: 'required', network: { default: 'deny', allow: ['api.acme.example'] } }),
  ]);
  admin = await s.operatorToken();
});
afterAll(() => s?.dispose());

const get = (path: string, token = admin) => s.api('GET', path, { token });
async function call(tenant: string, app: string, method: string, args: unknown, sub = 'alice') {
  return s.api('POST', `/v1/tenants/${tenant}/apps/${app}/calls/${method}`, { token: await s.token(tenant, sub, 'apps:call'), body: args });
}

describe('who may use the admin API', () => {
  it('should refuse no token, a tenant token, and an operator token without the route\'s scope', async () => {
    expect((await s.api('GET', '/v1/admin/tenants')).status).toBe(401);
    const tenantToken = await s.token('unit', 'mallory', 'apps:call apps:deploy logs:read console:read apps:review apps:rollout');
    const asTenant = await get('/v1/admin/tenants', tenantToken);
    expect(asTenant.status).toBe(401);
    expect(asTenant.json().error.code).toBe('unauthenticated');
    const noRead = await get('/v1/admin/tenants', await s.operatorToken('apps:review'));
    expect(noRead.status).toBe(403);
    const readOnly = await s.operatorToken('console:read');
    expect((await get('/v1/admin/review', readOnly)).status).toBe(200);
    const approve = await s.api('POST', '/v1/admin/tenants/acme/apps/x/versions/0123456789abcdef/approve', { token: readOnly, body: {} });
    expect(approve.status).toBe(403);
    const rollout = await s.api('PUT', '/v1/admin/tenants/acme/apps/x/rollout', { token: readOnly, body: { versions: {} } });
    expect(rollout.status).toBe(403);
  });
});

describe('review through the admin API', () => {
  it('should list a pending upload in the queue with size, sha256, upload time and uploader, and serve its source as text', async () => {
    const up = await s.api('PUT', '/v1/tenants/acme/apps/shop', { token: await s.token('acme', 'partner-pete'), body: shopV1 });
    expect(up.status, up.text).toBe(201);
    v.v1 = up.json().version;
    const queue = await get('/v1/admin/review');
    expect(queue.status, queue.text).toBe(200);
    expect(queue.json().pending).toEqual([
      expect.objectContaining({ tenant: 'acme', app: 'shop', version: v.v1, sha256: up.json().sha256, size: Buffer.byteLength(shopV1), uploaded_by: 'partner-pete' }),
    ]);
    expect(Date.parse(queue.json().pending[0].uploaded_at)).toBeGreaterThan(Date.now() - 60_000);
    const source = await get(`/v1/admin/tenants/acme/apps/shop/versions/${v.v1}/source`);
    expect(source.status).toBe(200);
    expect(source.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(source.headers.get('x-content-type-options')).toBe('nosniff');
    expect(source.text).toBe(shopV1);
  });

  it('should approve with the operator as the audit actor, after which the caller gets that version', async () => {
    expect((await call('acme', 'shop', 'version', null)).json().error.code).toBe('not_found');
    const ok = await s.api('POST', `/v1/admin/tenants/acme/apps/shop/versions/${v.v1}/approve`, { token: admin, body: {} });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json()).toMatchObject({ version: v.v1, state: 'approved' });
    expect((await call('acme', 'shop', 'version', null)).json()).toEqual({ result: 1 });
    const audit = s.logLines().find((l) => l.audit === 'app' && l.event === 'approve');
    expect(audit).toMatchObject({ tenant: 'acme', app: 'shop', version: v.v1, by: { sub: 'operator-olga', realm: 'ops' } });
    expect((await get('/v1/admin/review')).json().pending).toEqual([]);
  });

  it('should reject only with a reason', async () => {
    const up = await s.api('PUT', '/v1/tenants/acme/apps/other', { token: await s.token('acme'), body: shopV2 });
    const path = `/v1/admin/tenants/acme/apps/other/versions/${up.json().version}/reject`;
    expect((await s.api('POST', path, { token: admin, body: {} })).status).toBe(400);
    const res = await s.api('POST', path, { token: admin, body: { reason: 'calls hosts it does not declare' } });
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ state: 'rejected', reason: 'calls hosts it does not declare' });
  });
});

describe('rollout and rollback', () => {
  it('should move shares and roll back to the previous approved version in one request', async () => {
    const up = await s.api('PUT', '/v1/tenants/acme/apps/shop', { token: await s.token('acme'), body: shopV2 });
    v.v2 = up.json().version;
    await s.api('POST', `/v1/admin/tenants/acme/apps/shop/versions/${v.v2}/approve`, { token: admin, body: {} });
    const moved = await s.api('PUT', '/v1/admin/tenants/acme/apps/shop/rollout', { token: admin, body: { versions: { [v.v2!]: 100 } } });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.json().rollout).toEqual({ [v.v2!]: 100 });
    expect((await call('acme', 'shop', 'version', null, 'bob')).json()).toEqual({ result: 2 });
    const bad = await s.api('PUT', '/v1/admin/tenants/acme/apps/shop/rollout', { token: admin, body: { versions: { [v.v1!]: 50, [v.v2!]: 40 } } });
    expect(bad.status).toBe(400);
    const back = await s.api('POST', '/v1/admin/tenants/acme/apps/shop/rollback', { token: admin, body: {} });
    expect(back.status, back.text).toBe(200);
    expect(back.json().rollout).toEqual({ [v.v1!]: 100 });
    expect((await call('acme', 'shop', 'version', null, 'bob')).json()).toEqual({ result: 1 });
    const none = await s.api('POST', '/v1/admin/tenants/acme/apps/shop/rollback', { token: admin, body: {} });
    expect(none.status).toBe(400);
    const detail = (await get('/v1/admin/tenants/acme/apps/shop')).json();
    expect(detail.versions.map((x: { version: string; state: string; share: number }) => [x.version, x.state, x.share])).toEqual([
      [v.v1, 'approved', 100],
      [v.v2, 'approved', 0],
    ]);
    expect(s.logLines().filter((l) => l.event === 'rollout' && l.by?.realm === 'ops')).toHaveLength(2);
  });
});

describe('what the console shows', () => {
  it('should count calls, errors, breaches and latency per tenant, with live instances and storage against quota', async () => {
    await s.api('PUT', '/v1/tenants/unit/apps/shop', { token: await s.token('unit'), body: shopV1 });
    for (let i = 0; i < 3; i++) expect((await call('unit', 'shop', 'version', null)).status).toBe(200);
    expect((await call('unit', 'shop', 'fail', { value: SECRET_ARG })).status).toBe(422);
    expect((await call('unit', 'shop', 'spin', null)).json().error.code).toBe('timeout');
    expect((await call('unit', 'shop', 'save', { value: SECRET_VALUE })).json()).toEqual({ result: { echoed: SECRET_VALUE } });
    const launched = await s.api('POST', '/v1/tenants/unit/apps/shop/instances', { token: await s.token('unit', 'carol', 'apps:call'), body: {} });
    expect(launched.status, launched.text).toBe(201);

    const res = await get('/v1/admin/tenants');
    expect(res.status, res.text).toBe(200);
    const unit = res.json().tenants.find((t: { id: string }) => t.id === 'unit');
    const acme = res.json().tenants.find((t: { id: string }) => t.id === 'acme');
    expect(unit).toMatchObject({
      realm: 'unit',
      storage: { engine: 'leveldb', isolation: 'schema', namespace: 'unit' },
      compute: { isolation: 'shared' },
      review: 'none',
      network: { default: 'deny', allow: [] },
      last_5m: { calls: 6, errors: 2, breaches: 1 },
      last_60m: { calls: 6, errors: 2, breaches: 1 },
      sandbox: null,
      storage_quota_bytes: 100 * 1024 * 1024,
    });
    expect(unit.limits.cpu_ms).toBe(20);
    expect(unit.live_instances).toBeGreaterThanOrEqual(1);
    expect(unit.last_60m.p50_ms).toBeGreaterThan(0);
    expect(unit.last_60m.p99_ms).toBeGreaterThanOrEqual(unit.last_60m.p50_ms);
    expect(unit.storage_bytes).toBeGreaterThan(0);
    expect(unit.per_minute).toHaveLength(60);
    expect(unit.per_minute.at(-1)).toMatchObject({ calls: 6, errors: 2 });
    expect(acme).toMatchObject({ review: 'required', network: { allow: ['api.acme.example'] }, apps: 2 });
  });

  it('should list an app\'s recent errors by code with the bundle line each was thrown at, never the message', async () => {
    const detail = (await get('/v1/admin/tenants/unit/apps/shop')).json();
    const failure = detail.errors.find((e: { method: string }) => e.method === 'fail');
    expect(failure).toMatchObject({ code: 'miniapp_error', version: expect.any(String) });
    expect(failure.source).toContain('throw new Error(`failed on ${args.value}`)');
    expect(shopV1.split('\n')[failure.line - 1]).toContain(failure.source);
    expect(detail.errors.find((e: { method: string }) => e.method === 'spin')).toMatchObject({ code: 'timeout' });
    expect(detail.last_60m).toMatchObject({ calls: 6, errors: 2 });
  });

  it('should show the proxy\'s denial with host, port and reason', async () => {
    const res = await call('unit', 'shop', 'reach', null);
    expect(res.json()).toEqual({ result: 'egress_denied' });
    const { decisions } = (await get('/v1/admin/egress?tenant=unit')).json();
    expect(decisions[0]).toMatchObject({ tenant: 'unit', app: 'shop', host: 'denied.example.com', port: 8443, decision: 'deny' });
    expect(decisions[0].reason).toEqual(expect.any(String));
    expect((await get('/v1/admin/egress?tenant=acme')).json().decisions).toEqual([]);
    expect((await get('/v1/admin/egress?tenant=nobody')).status).toBe(404);
  });

  it('should tail a tenant\'s log stream with call outcomes and mini-app lines stripped of message and fields', async () => {
    const res = await get('/v1/admin/tenants/unit/logs?app=shop');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = res.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.type === 'call' && l.method === 'fail' && l.outcome === 'miniapp_error')).toBe(true);
    const log = lines.find((l) => l.type === 'log');
    expect(log).toMatchObject({ level: 'info', app: 'shop', withheld: ['msg', 'fields'] });
    expect(log.msg).toBeUndefined();
    expect(log.fields).toBeUndefined();
  });

  it('should follow the log stream live', async () => {
    await s.api('PUT', '/v1/tenants/unit/apps/live', { token: await s.token('unit'), body: shopV2 });
    const ac = new AbortController();
    const res = await fetch(`${s.adminUrl}/v1/admin/tenants/unit/logs?app=live&follow=true`, { headers: { authorization: `Bearer ${admin}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    // The head arrives before any line: the app has none yet, so what follows is live.
    expect((await call('unit', 'live', 'version', null)).json()).toEqual({ result: 2 });
    let text = '';
    while (!text.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    ac.abort();
    expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({ type: 'call', app: 'live', method: 'version', outcome: 'ok' });
  });
});

describe('metadata only', () => {
  it('should never return a stored value, a call argument or a result from any admin route or console file', async () => {
    // The secrets exist where a leak would come from: in storage, in the log hub, in the stats.
    expect((await call('unit', 'shop', 'load', null)).json()).toEqual({ result: SECRET_VALUE });
    const doc = (await s.api('GET', '/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> };
    const adminGets = Object.entries(doc.paths)
      .filter(([p, ops]) => p.startsWith('/v1/admin/') && 'get' in ops)
      .map(([p]) => p);
    expect(adminGets.length).toBeGreaterThanOrEqual(6);
    const fill: Record<string, string> = { tenant: 'unit', app: 'shop', version: '' };
    const apps = (await get('/v1/admin/tenants/unit/apps')).json().apps as { versions: { version: string }[] }[];
    const urls = new Set<string>();
    for (const p of adminGets) {
      for (const tenant of ['unit', 'acme']) {
        for (const version of apps.flatMap((a) => a.versions.map((x) => x.version))) {
          urls.add(p.replace('{tenant}', tenant).replace('{app}', 'shop').replace('{version}', version).replace(/\{(\w+)\}/g, (_m, k: string) => fill[k] ?? ''));
        }
      }
    }
    for (const extra of ['/v1/admin/egress', '/v1/admin/tenants/unit/logs', '/v1/admin/tenants/unit/logs?app=shop', '/console/', '/console/boot.js', '/console/app.js', '/console/api.js', '/console/dom.js', '/console/charts.js', '/console/highlight.js', '/console/app.css']) urls.add(extra);
    let answered = 0;
    for (const url of urls) {
      const res = await get(url);
      if (res.status === 200) answered++;
      expect(res.text, url).not.toContain(SECRET_VALUE);
      expect(res.text, url).not.toContain(SECRET_ARG);
    }
    expect(answered).toBeGreaterThanOrEqual(12);
    // Control: the tenant's own log stream does carry them, so the absence above is the admin API's doing.
    const own = await s.api('GET', '/v1/tenants/unit/logs', { token: await s.token('unit', 'x', 'logs:read') });
    expect(own.text).toContain(SECRET_VALUE);
  });
});

describe('the console files', () => {
  it('should serve the console with a same-origin-only CSP, and document every admin route', async () => {
    const page = await s.api('GET', '/console/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.text).not.toMatch(/https?:\/\//);
    expect((await s.api('GET', '/console/app.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await s.api('GET', '/console/nope.js')).status).toBe(404);
    expect((await s.api('GET', '/console/..%2Fpackage.json')).status).toBe(404);
    const redirect = await fetch(`${s.url}/console`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const ops = Object.values((await s.api('GET', '/openapi.json')).json().paths as Record<string, Record<string, { operationId: string }>>).flatMap((o) => Object.values(o).map((x) => x.operationId));
    expect(ops).toEqual(expect.arrayContaining(['adminListTenants', 'adminReviewQueue', 'adminGetApp', 'adminGetVersionSource', 'adminApproveVersion', 'adminRejectVersion', 'adminSetRollout', 'adminRollback', 'adminEgressDecisions', 'adminTenantLogs']));
  });
});
