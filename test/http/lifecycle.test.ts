/**
 * The app lifecycle through the HTTP API on a real port with real JWTs (issue 12): versions
 * with states, operator review in a realm of no tenant, staged rollout by a stable hash of
 * (app, sub), rollback, app management (read, download, delete with and without purge), and
 * the uploads refused because they would fail on every call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { startLifecycleServer, type LifecycleServer } from '../helpers/lifecycle-server.ts';

declare const fc: any;

const v1 = bundleOf({ version: () => 1, put: async (v: unknown) => { await fc.storage.set('k', v); return true; }, get: async () => (await fc.storage.get('k')) ?? null });
const v2 = bundleOf({ version: () => 2, put: async (v: unknown) => { await fc.storage.set('k', v); return true; }, get: async () => (await fc.storage.get('k')) ?? null });
const v3 = bundleOf({ version: () => 3 });

let s: LifecycleServer;
let partner: string;
let operator: string;
const versions: Record<string, string> = {};

beforeAll(async () => {
  s = await startLifecycleServer([{ id: 'acme', review: 'required', limits: { instances: 1000 } }, { id: 'unit' }]);
  partner = await s.token('acme');
  operator = await s.operatorToken();
});
afterAll(() => s?.dispose());

const appPath = (tenant: string, app: string) => `/v1/tenants/${tenant}/apps/${app}`;
async function upload(tenant: string, app: string, source: string, token = partner) {
  return s.api('PUT', appPath(tenant, app), { token, body: source });
}
/** The version a one-shot call by `sub` runs (each bundle's `version` method says which). */
async function versionFor(sub: string, app = 'shop'): Promise<number | string> {
  const res = await s.api('POST', `${appPath('acme', app)}/calls/version`, { token: await s.token('acme', sub, 'apps:call') });
  return res.status === 200 ? res.json().result : res.json().error.code;
}

describe('versions and review', () => {
  it('should approve uploads at once for a tenant without review', async () => {
    const res = await upload('unit', 'shop', v1, await s.token('unit'));
    expect(res.status, res.text).toBe(201);
    expect(res.json().state).toBe('approved');
    const call = await s.api('POST', `${appPath('unit', 'shop')}/calls/version`, { token: await s.token('unit') });
    expect(call.json()).toEqual({ result: 1 });
  });

  it('should keep a first upload pending, serving nobody, until an operator approves it', async () => {
    const res = await upload('acme', 'shop', v1);
    expect(res.status, res.text).toBe(201);
    expect(res.json().state).toBe('pending');
    versions.v1 = res.json().version;
    expect(await versionFor('alice')).toBe('not_found');
    const ok = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v1}/approve`, { token: operator });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json()).toMatchObject({ version: versions.v1, state: 'approved', uploaded_by: 'partner' });
    expect(await versionFor('alice')).toBe(1);
  });

  it('should keep v2 invisible to every caller while it is pending', async () => {
    const res = await upload('acme', 'shop', v2);
    expect(res.json().state).toBe('pending');
    versions.v2 = res.json().version;
    for (const sub of ['alice', 'bob', 'carol', 'dave', 'erin']) expect(await versionFor(sub)).toBe(1);
    const app = await s.api('GET', appPath('acme', 'shop'), { token: partner });
    expect(app.json().rollout).toEqual({ [versions.v1!]: 100 });
    expect(app.json().versions.map((v: { state: string }) => v.state)).toEqual(['approved', 'pending']);
    // A rollout may name approved versions only.
    const bad = await s.api('PUT', `${appPath('acme', 'shop')}/rollout`, { token: partner, body: { versions: { [versions.v1!]: 90, [versions.v2!]: 10 } } });
    expect(bad.status).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'invalid_request' });
  });

  it("should answer 403 to the partner's own token on approve, even with an apps:review scope", async () => {
    for (const token of [partner, await s.token('acme', 'partner', 'apps:deploy apps:review')]) {
      const res = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v2}/approve`, { token });
      expect(res.status, res.text).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
    }
    const app = await s.api('GET', appPath('acme', 'shop'), { token: partner });
    expect(app.json().versions[1].state).toBe('pending');
  });

  it('should give an operator token no authority in a tenant realm, and refuse it without apps:review', async () => {
    const asTenant = await s.api('GET', appPath('acme', 'shop'), { token: await s.operatorToken('olga', 'apps:review apps:deploy apps:call') });
    expect(asTenant.status).toBe(401);
    expect(asTenant.json().error.code).toBe('unauthenticated');
    const call = await s.api('POST', `${appPath('acme', 'shop')}/calls/version`, { token: await s.operatorToken('olga', 'apps:call') });
    expect(call.status).toBe(401);
    const noScope = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v2}/approve`, { token: await s.operatorToken('olga', 'apps:deploy') });
    expect(noScope.status).toBe(403);
    const noToken = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v2}/approve`);
    expect(noToken.status).toBe(401);
  });

  it('should approve v2 with an operator-realm token and write an audit line naming who, when and which sha256', async () => {
    const res = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v2}/approve`, { token: operator });
    expect(res.status, res.text).toBe(200);
    expect(res.json().state).toBe('approved');
    const audit = s.logLines().filter((l) => l.audit === 'app' && l.event === 'approve' && l.version === versions.v2);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ tenant: 'acme', app: 'shop', state: 'approved', by: { sub: 'operator-olga', realm: 'ops' } });
    expect(audit[0]!.sha256).toMatch(new RegExp(`^${versions.v2}[0-9a-f]{48}$`));
    expect(typeof audit[0]!.time).toBe('number');
    const uploads = s.logLines().filter((l) => l.audit === 'app' && l.event === 'upload' && l.tenant === 'acme');
    expect(uploads.map((l) => [l.state, l.by])).toEqual([
      ['pending', { sub: 'partner', realm: 'acme' }],
      ['pending', { sub: 'partner', realm: 'acme' }],
    ]);
    // Approving again is refused: only a pending version is reviewed.
    expect((await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v2}/approve`, { token: operator })).status).toBe(400);
  });

  it('should reject a version with its reason, and keep a rejected version out of any rollout', async () => {
    const up = await upload('acme', 'shop', v3);
    versions.v3 = up.json().version;
    const noReason = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v3}/reject`, { token: operator, body: {} });
    expect(noReason.status).toBe(400);
    const res = await s.api('POST', `${appPath('acme', 'shop')}/versions/${versions.v3}/reject`, { token: operator, body: { reason: 'reads user:profile of other users' } });
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ state: 'rejected', reason: 'reads user:profile of other users' });
    const app = await s.api('GET', appPath('acme', 'shop'), { token: partner });
    expect(app.json().versions[2]).toMatchObject({ version: versions.v3, state: 'rejected', reason: 'reads user:profile of other users' });
    const rollout = await s.api('PUT', `${appPath('acme', 'shop')}/rollout`, { token: partner, body: { versions: { [versions.v3!]: 100 } } });
    expect(rollout.status).toBe(400);
    expect(s.logLines().some((l) => l.event === 'reject' && l.reason === 'reads user:profile of other users' && l.by?.realm === 'ops')).toBe(true);
  });
});

describe('rollout and rollback', () => {
  const subjects = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
  const chosen = new Map<string, string>();

  it('should refuse shares that are not whole percents summing to 100', async () => {
    for (const shares of [{ [versions.v1!]: 90, [versions.v2!]: 20 }, { [versions.v1!]: 89.5, [versions.v2!]: 10.5 }, { [versions.v1!]: 100, [versions.v2!]: 0 }, {}]) {
      const res = await s.api('PUT', `${appPath('acme', 'shop')}/rollout`, { token: partner, body: { versions: shares } });
      expect(res.status, JSON.stringify(shares)).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
  });

  it('should send about 10 % of 1,000 distinct subjects to v2 under a 90/10 rollout', async () => {
    const res = await s.api('PUT', `${appPath('acme', 'shop')}/rollout`, { token: partner, body: { versions: { [versions.v1!]: 90, [versions.v2!]: 10 } } });
    expect(res.status, res.text).toBe(200);
    expect(res.json().rollout).toEqual({ [versions.v1!]: 90, [versions.v2!]: 10 });
    // Launches through the API: the answer names the version the subject got.
    for (let i = 0; i < subjects.length; i += 20) {
      await Promise.all(
        subjects.slice(i, i + 20).map(async (sub) => {
          const token = await s.token('acme', sub, 'apps:call');
          const launched = await s.api('POST', `${appPath('acme', 'shop')}/instances`, { token });
          expect(launched.status, launched.text).toBe(201);
          chosen.set(sub, launched.json().version);
          expect((await s.api('DELETE', `/v1/tenants/acme/instances/${launched.json().instance}`, { token })).status).toBe(204);
        }),
      );
    }
    const onV2 = [...chosen.values()].filter((v) => v === versions.v2).length;
    expect([...chosen.values()].every((v) => v === versions.v1 || v === versions.v2)).toBe(true);
    expect(onV2).toBeGreaterThanOrEqual(50);
    expect(onV2).toBeLessThanOrEqual(150);
  }, 180_000);

  it('should keep each subject on one version while the shares stand', async () => {
    for (const sub of subjects.slice(0, 60)) expect(await versionFor(sub)).toBe(chosen.get(sub) === versions.v2 ? 2 : 1);
  }, 60_000);

  it('should roll back to v1 for new calls while a v2 instance keeps its version', async () => {
    const onV2 = subjects.filter((sub) => chosen.get(sub) === versions.v2).slice(0, 5);
    expect(onV2.length).toBe(5);
    const token = await s.token('acme', onV2[0]!, 'apps:call');
    const kept = await s.api('POST', `${appPath('acme', 'shop')}/instances`, { token });
    expect(kept.json().version).toBe(versions.v2);
    const res = await s.api('PUT', `${appPath('acme', 'shop')}/rollout`, { token: partner, body: { versions: { [versions.v1!]: 100 } } });
    expect(res.status).toBe(200);
    for (const sub of onV2) expect(await versionFor(sub)).toBe(1);
    const call = await s.api('POST', `/v1/tenants/acme/instances/${kept.json().instance}/calls/version`, { token });
    expect(call.json()).toEqual({ result: 2 });
    const audit = s.logLines().filter((l) => l.event === 'rollout');
    expect(audit.at(-1)).toMatchObject({ tenant: 'acme', app: 'shop', rollout: { [versions.v1!]: 100 }, by: { sub: 'partner', realm: 'acme' } });
  });
});

describe('app management', () => {
  it('should list versions with sha256, size, uploader, time and state, and download each bundle byte for byte', async () => {
    const res = await s.api('GET', appPath('acme', 'shop'), { token: partner });
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.app).toBe('shop');
    expect(body.versions).toHaveLength(3);
    for (const v of body.versions) {
      expect(Object.keys(v).filter((k) => k !== 'reason').sort()).toEqual(['sha256', 'size', 'state', 'uploaded_at', 'uploaded_by', 'version']);
      expect(Number.isNaN(Date.parse(v.uploaded_at))).toBe(false);
    }
    const bundle = await s.api('GET', `${appPath('acme', 'shop')}/versions/${versions.v2}/bundle`, { token: partner });
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/^application\/javascript/);
    expect(bundle.text).toBe(v2);
    expect((await s.api('GET', `${appPath('acme', 'shop')}/versions/0000000000000000/bundle`, { token: partner })).status).toBe(404);
    // Another tenant's token reads nothing here.
    expect((await s.api('GET', `${appPath('acme', 'shop')}/versions/${versions.v2}/bundle`, { token: await s.token('unit') })).status).toBe(401);
  });

  it('should delete an app and keep its data unless purged', async () => {
    const unit = await s.token('unit', 'alice');
    const call = (method: string, body?: unknown) => s.api('POST', `${appPath('unit', 'shop')}/calls/${method}`, { token: unit, body });
    expect((await call('put', { note: 'kept' })).status).toBe(200);
    expect((await s.api('DELETE', appPath('unit', 'shop'), { token: unit })).status).toBe(204);
    expect((await s.api('GET', appPath('unit', 'shop'), { token: unit })).status).toBe(404);
    expect((await call('get')).status).toBe(404);
    expect((await s.api('DELETE', appPath('unit', 'shop'), { token: unit })).status).toBe(404);
    await upload('unit', 'shop', v1, unit);
    expect((await call('get')).json()).toEqual({ result: { note: 'kept' } });
    expect((await s.api('DELETE', `${appPath('unit', 'shop')}?purge=true`, { token: unit })).status).toBe(204);
    await upload('unit', 'shop', v1, unit);
    expect((await call('get')).json()).toEqual({ result: null });
    expect(s.logLines().filter((l) => l.event === 'delete').map((l) => l.purge)).toEqual([false, true]);
  });

  it('should keep a bundle another app of the tenant shares when one app is deleted', async () => {
    const unit = await s.token('unit');
    await upload('unit', 'twin-a', v3, unit);
    await upload('unit', 'twin-b', v3, unit);
    expect((await s.api('DELETE', appPath('unit', 'twin-a'), { token: unit })).status).toBe(204);
    const res = await s.api('POST', `${appPath('unit', 'twin-b')}/calls/version`, { token: unit });
    expect(res.json()).toEqual({ result: 3 });
  });
});

describe('uploads that would fail on every call', () => {
  const cases: [string, string, RegExp][] = [
    ['a dynamic import()', 'export async function f() { return (await import("./other.js")).x; }', /import\(\)/],
    ['a computed import()', 'export async function f(name) { return import(name); }', /import\(\)/],
    ['require()', 'export function f() { return require("node:fs").readFileSync("/etc/passwd"); }', /require\(\)/],
    ['a CommonJS bundle (module.exports)', 'module.exports = { f() { return 1; } };', /CommonJS/],
    ['a CommonJS bundle (exports.x =)', 'exports.f = function () { return 1; };', /CommonJS/],
  ];
  for (const [name, source, message] of cases) {
    it(`should refuse ${name} with invalid_request`, async () => {
      const res = await upload('unit', 'refused', source, await s.token('unit'));
      expect(res.status, res.text).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
      expect(res.json().error.message).toMatch(message);
    });
  }

  it('should accept the words in strings, comments and regular expressions, and a guard on typeof require', async () => {
    const source = 'const re = /require\\(x\\)/;\n// import("y")\nexport function f() { return [typeof require === "undefined", "import(z)", re.source]; }';
    const res = await upload('unit', 'words', source, await s.token('unit'));
    expect(res.status, res.text).toBe(201);
    const call = await s.api('POST', `${appPath('unit', 'words')}/calls/f`, { token: await s.token('unit') });
    expect(call.json()).toEqual({ result: [true, 'import(z)', 'require\\(x\\)'] });
  });
});
