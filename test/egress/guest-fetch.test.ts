/**
 * The whole chain: guest `fetch` in a real isolate → bridge → fetch binding → egress
 * proxy → loopback upstream. The tenant comes from the launch, never from the guest.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBinding } from '../../src/bindings/fetch/index.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { type TestProxy, type Upstream, startTestProxy, startUpstream } from '../helpers/egress-fixtures.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

// The isolate's global (test bodies are stringified into bundles; see helpers/bundle.ts).
declare const fc: any;

const app = bundleOf({
  async get({ url, headers }: { url: string; headers?: Record<string, string> }) {
    try {
      const res = await fetch(url, { headers });
      return { status: res.status, text: await res.text(), redirected: res.redirected };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: e.message };
    }
  },
  async many({ url, n }: { url: string; n: number }) {
    const codes: string[] = [];
    for (let i = 0; i < n; i++) {
      try { await fc.fetch(url); codes.push('ok'); } catch (e: any) { codes.push(e.code); }
    }
    return codes;
  },
});

let up: Upstream;
let t: TestProxy;
let platform: Awaited<ReturnType<typeof startTestPlatform>>;

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    if (req.url === '/away') { res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }); res.end(); return; }
    res.end(`hello ${req.headers.host} ${req.headers['proxy-authorization'] ?? 'no-credential'}`);
  });
  const rules = { a: [`api.test:${up.port}`, `127.0.0.1:${up.port}`], b: [`other.test:${up.port}`] };
  t = await startTestProxy({ a: { rules: rules.a }, b: { rules: rules.b } });
  platform = await startTestPlatform(
    [{ id: 'a', allow: rules.a, limits: { fetch_per_call: 3 } }, { id: 'b', allow: rules.b }],
    { fetchBinding: (tenant) => fetchBinding({ proxyUrl: t.proxy.url, credentialKey: t.key, tenantId: tenant.id, limits: tenant.limits, logger: pino({ level: 'silent' }) }) },
  );
});
afterAll(async () => { await platform?.dispose(); await Promise.all([up?.close(), t?.close()]); });

describe('guest fetch through the egress proxy', () => {
  it('should reach an allowed upstream and never show it the credential', async () => {
    const res = await callOnce(platform, 'a', 'fetcher', app, 'get', { url: `http://api.test:${up.port}/`, headers: { 'proxy-authorization': 'Bearer forged', host: 'evil.test' } });
    expect(res).toEqual({ status: 200, text: `hello api.test:${up.port} no-credential`, redirected: false });
  });

  it('should deny the same URL for another tenant with a coded TypeError', async () => {
    const res = await callOnce(platform, 'b', 'fetcher', app, 'get', { url: `http://api.test:${up.port}/` });
    expect(res).toMatchObject({ name: 'TypeError', code: 'egress_denied' });
    expect(res.message).toContain('api.test');
    expect(res.message).not.toMatch(/v1\./);
  });

  it('should deny metadata, directly and through a redirect', async () => {
    expect(await callOnce(platform, 'a', 'fetcher', app, 'get', { url: 'http://169.254.169.254/latest/meta-data/' })).toMatchObject({ code: 'egress_denied' });
    expect(await callOnce(platform, 'a', 'fetcher', app, 'get', { url: `http://api.test:${up.port}/away` })).toMatchObject({ code: 'egress_denied' });
  });

  it('should cap fetches per call', async () => {
    expect(await callOnce(platform, 'a', 'fetcher', app, 'many', { url: `http://api.test:${up.port}/`, n: 4 })).toEqual(['ok', 'ok', 'ok', 'resource_exhausted']);
  });
});
