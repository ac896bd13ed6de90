/**
 * THREATS A5: when fc.storage or fc.fetch fail underneath a mini-app — the tenant's
 * database closed mid-run, a name that does not resolve, a refused target, a dead
 * upstream — the guest sees a real Error with a stable `code` and a message that names
 * no host path, no namespace, no other tenant and no credential; its stack holds only
 * guest frames. (Faults present at start-up — a corrupt or full tenant store — are in
 * threat-39-corrupt-tenant-store.test.ts and e39-disk-full.test.ts.)
 *
 * Regression: `fc.storage.list` on a closed database threw abstract-level's raw
 * LEVEL_DATABASE_NOT_OPEN synchronously (outside the error wrapper), which reached the
 * guest as `internal`; `iterator()` calls are now wrapped like every other level call.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBinding } from '../../src/bindings/fetch/index.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { startTestProxy, startUpstream, type TestProxy, type Upstream } from '../helpers/egress-fixtures.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';
import { expectSanitised } from '../helpers/security-fixtures.ts';

declare const fc: any;

const app = bundleOf({
  async storageOps() {
    const out: Record<string, unknown> = {};
    const ops: Record<string, () => Promise<unknown>> = {
      get: () => fc.storage.get('k'),
      set: () => fc.storage.set('k', 1),
      delete: () => fc.storage.delete('k'),
      list: () => fc.storage.list({ prefix: 'k' }),
      batch: () => fc.storage.batch([{ op: 'set', key: 'k', value: 1 }]),
    };
    for (const [name, op] of Object.entries(ops)) {
      try {
        await op();
        out[name] = 'ok';
      } catch (e: any) {
        out[name] = { name: e.name, code: e.code, message: e.message, stack: String(e.stack), keys: Object.keys(e) };
      }
    }
    return out;
  },
  async fetchOne(url: string) {
    try {
      const res = await fetch(url);
      return { status: res.status };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: e.message, stack: String(e.stack), keys: Object.keys(e) };
    }
  },
  async ok() {
    await fc.storage.set('alive', true);
    return fc.storage.get('alive');
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
let proxy: TestProxy;
let up: Upstream;
let deadPort: number;
const SECRETS = () => [p.dataDir, 'ns-closing', 'ns-bystander', 'closing-tenant', 'bystander-tenant'];

beforeAll(async () => {
  up = await startUpstream('up');
  const dead = await startUpstream('dead');
  deadPort = dead.port;
  await dead.close();
  const rules = [`api.test:${up.port}`, 'nowhere.invalid', `127.0.0.1:${deadPort}`];
  proxy = await startTestProxy({ 'closing-tenant': { rules }, 'bystander-tenant': { rules } });
  p = await startTestPlatform(
    [
      { id: 'closing-tenant', namespace: 'ns-closing', isolation: 'database', allow: rules, limits: { cpu_ms: 1000 } },
      { id: 'bystander-tenant', namespace: 'ns-bystander', isolation: 'database', allow: rules, limits: { cpu_ms: 1000 } },
    ],
    { fetchBinding: (tenant) => fetchBinding({ proxyUrl: proxy.proxy.url, credentialKey: proxy.key, tenantId: tenant.id, limits: tenant.limits, logger: pino({ level: 'silent' }) }) },
  );
});
afterAll(async () => {
  await p?.dispose();
  await Promise.all([proxy?.close(), up?.close()]);
});

function expectCodedGuestError(e: { name: string; code: string; message: string; stack: string; keys: string[] }, code: string): void {
  expect(e.code).toBe(code);
  expect(['Error', 'TypeError']).toContain(e.name);
  // Only `code` is added to the error: no cause, path, errno or host object rides along.
  expect(e.keys).toEqual(['code']);
  expectSanitised(e.message, SECRETS());
  expectSanitised(e.stack, SECRETS());
}

describe('fc.storage failing underneath a mini-app', () => {
  it("should give every op a coded storage_error once the tenant's database is closed, and fail no one else", async () => {
    expect(await callOnce(p, 'closing-tenant', 'a5', app, 'ok')).toBe(true);
    // The tenant's own database goes away under the running platform (as during an operator's purge).
    await (p.tenants.get('closing-tenant').store as unknown as { close(): Promise<void> }).close();
    const seen = await callOnce(p, 'closing-tenant', 'a5', app, 'storageOps');
    for (const op of ['get', 'set', 'delete', 'list', 'batch']) expectCodedGuestError(seen[op], 'storage_error');
    expect(await callOnce(p, 'bystander-tenant', 'a5', app, 'ok')).toBe(true);
  });
});

describe('fc.fetch failing underneath a mini-app', () => {
  it.each([
    ['a name that does not resolve', () => 'http://nowhere.invalid/', 'egress_failed'],
    ['an upstream that refuses connections', () => `http://127.0.0.1:${deadPort}/`, 'egress_failed'],
    ['a target outside the allowlist', () => 'http://elsewhere.test/', 'egress_denied'],
    ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/', 'egress_denied'],
  ])('should reject %s with a coded, sanitised %s', async (_, url, code) => {
    const seen = await callOnce(p, 'bystander-tenant', 'a5', app, 'fetchOne', url());
    expectCodedGuestError(seen, code);
    expect(seen.name).toBe('TypeError');
  });

  it('should have reached the allowed upstream never, and the credential never left the host', async () => {
    expect(up.requests).toHaveLength(0);
    expect(proxy.lookups).not.toContain('elsewhere.test');
  });
});
