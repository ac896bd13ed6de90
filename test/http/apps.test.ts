/**
 * Bundle upload and listing (CONTRACT §2, §4): every rejected bundle is `invalid_request`
 * with its reason, an oversize one `payload_too_large` (the limit lowered to 64 KiB in the
 * test config); a good upload is content-addressed, the newest upload is active and new
 * instances run it while old ones keep their version.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

const LIMIT = 64 * 1024;
let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha' }, { id: 'beta', isolation: 'database' }], deployment: { max_bundle_bytes: LIMIT } });
});
afterAll(() => s?.dispose());

async function put(app: string, payload: string | Buffer, contentType: string | undefined = 'application/javascript') {
  const headers: Record<string, string> = bearer(await s.token('alpha', 'dev', 'apps:deploy'));
  if (contentType !== undefined) headers['content-type'] = contentType;
  return s.inject({ method: 'PUT', url: `/v1/tenants/alpha/apps/${app}`, headers, payload });
}

/** A valid bundle padded with a comment to exactly `bytes` bytes. */
function paddedTo(bytes: number): string {
  const head = 'export const f = () => 1;\n//';
  return head + 'x'.repeat(bytes - Buffer.byteLength(head));
}

describe('PUT /v1/tenants/:tenant/apps/:app rejects', () => {
  const cases: [string, string | Buffer, RegExp][] = [
    ['a syntax error', 'export const f = () => {', /does not compile/],
    ['an import statement', "import x from 'node:fs';\nexport const f = () => x;", /self-contained.*imports "node:fs"/],
    ['a bundle without an exported function', 'export const x = 1;\nconst g = () => 2;', /exports no function/],
    ['invalid UTF-8 bytes', Buffer.concat([Buffer.from('export const f = () => "'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('";')]), /not valid UTF-8/],
    ['a bundle that throws while loading', "throw new Error('top-level boom');\nexport const f = () => 1;", /top-level boom/],
  ];
  for (const [name, body, reason] of cases) {
    it(`should answer 400 invalid_request with the reason for ${name}`, async () => {
      expect(expectError(await put('bad', body), 400, 'invalid_request')).toMatch(reason);
    });
  }

  it('should answer 400 invalid_request for an empty body, with or without a content type', async () => {
    expect(expectError(await put('bad', '', 'application/javascript'), 400, 'invalid_request')).toMatch(/empty/);
    expect(expectError(await put('bad', '', undefined), 400, 'invalid_request')).toMatch(/empty/);
  });

  it('should answer 415 unsupported_media_type for a content type it does not take', async () => {
    for (const type of ['text/plain', 'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expectError(await put('bad', 'export const f = () => 1;', type), 415, 'unsupported_media_type');
    }
  });

  it('should not let text/plain decode invalid UTF-8 lossily past the UTF-8 check (regression)', async () => {
    // Before the fix, fastify's text/plain parser turned 0xff into U+FFFD and the upload was 201 with another sha256.
    const bytes = Buffer.concat([Buffer.from('export const f = () => "'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('";')]);
    expectError(await put('bad', bytes, 'text/plain'), 415, 'unsupported_media_type');
    expectError(await put('bad', JSON.stringify('export const g = () => 2;'), 'application/json'), 415, 'unsupported_media_type');
  });

  it('should take the bundle as text/javascript and application/octet-stream too', async () => {
    for (const type of ['text/javascript', 'application/octet-stream', 'application/javascript; charset=utf-8']) {
      expect((await put('typed', 'export const f = () => 1;', type)).statusCode).toBe(201);
    }
  });

  it('should answer 400 invalid_request for a malformed app id', async () => {
    for (const app of ['Bad', '-lead', 'a_b', 'x'.repeat(64)]) expectError(await put(app, 'export const f = () => 1;'), 400, 'invalid_request');
  });

  it('should answer 413 payload_too_large one byte over max_bundle_bytes and accept exactly the limit', async () => {
    expectError(await put('big', paddedTo(LIMIT + 1)), 413, 'payload_too_large');
    expectError(await put('big', paddedTo(4 * LIMIT)), 413, 'payload_too_large');
    const ok = await put('big', paddedTo(LIMIT));
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ size: LIMIT });
  });

  it('should not store anything for a rejected bundle', async () => {
    const list = await s.inject({ method: 'GET', url: '/v1/tenants/alpha/apps', headers: bearer(await s.token('alpha')) });
    expect((list.json() as { apps: { app: string }[] }).apps.map((a) => a.app)).not.toContain('bad');
  });
});

describe('PUT and GET apps', () => {
  const v1 = bundleOf({ version: () => 1 });
  const v2 = bundleOf({ version: () => 2, extra: () => 'x' });

  it('should answer 201 {app, version, sha256, size, methods, state} for a good upload', async () => {
    const res = await put('counter', v1);
    expect(res.statusCode).toBe(201);
    const sha256 = createHash('sha256').update(v1).digest('hex');
    expect(res.json()).toEqual({ app: 'counter', version: sha256.slice(0, 16), sha256, size: Buffer.byteLength(v1), methods: ['version'], state: 'approved' });
  });

  it('should answer the same version for the same bytes', async () => {
    const a = (await put('same', v1)).json();
    const b = (await put('same', v1)).json();
    expect(b).toEqual(a);
    const list = await s.inject({ method: 'GET', url: '/v1/tenants/alpha/apps', headers: bearer(await s.token('alpha', 'dev', 'apps:deploy')) });
    expect((list.json() as { apps: { app: string; versions: unknown[] }[] }).apps.find((x) => x.app === 'same')?.versions).toHaveLength(1);
  });

  it('should list every version with the newest active, and launch the newest for new instances', async () => {
    const first = (await put('rolling', v1)).json() as { version: string };
    const old = await s.launch('alpha', 'rolling', 'alice');
    const second = (await put('rolling', v2)).json() as { version: string };
    const list = await s.inject({ method: 'GET', url: '/v1/tenants/alpha/apps', headers: bearer(await s.token('alpha', 'dev', 'apps:deploy')) });
    expect(list.statusCode).toBe(200);
    const rolling = (list.json() as { apps: { app: string; active: string; versions: { version: string; methods: string[]; created_at: string }[] }[] }).apps.find((a) => a.app === 'rolling')!;
    expect(rolling.active).toBe(second.version);
    expect(rolling.versions.map((v) => v.version)).toEqual([first.version, second.version]);
    expect(rolling.versions[1]!.methods.sort()).toEqual(['extra', 'version']);
    expect(Number.isNaN(Date.parse(rolling.versions[0]!.created_at))).toBe(false);

    const launched = await s.inject({ method: 'POST', url: '/v1/tenants/alpha/apps/rolling/instances', headers: bearer(await s.token('alpha', 'alice')) });
    expect(launched.json()).toMatchObject({ app: 'rolling', version: second.version });
    const fresh = (launched.json() as { instance: string }).instance;
    expect(resultOf(await s.call('alpha', fresh, 'version'))).toBe(2);
    expect(resultOf(await s.call('alpha', old, 'version'))).toBe(1);
    expect(resultOf(await s.oneShot('alpha', 'rolling', 'version'))).toBe(2);
  });

  it("should list only the path tenant's apps", async () => {
    await put('alpha-only', v1);
    const res = await s.inject({ method: 'GET', url: '/v1/tenants/beta/apps', headers: bearer(await s.token('beta', 'dev', 'apps:deploy')) });
    expect(res.json()).toEqual({ apps: [] });
  });
});
