/**
 * The partner-quote sample against a real loopback upstream, through the real egress
 * proxy started by startEgress (the same wiring `serve` and `run` use): allowed for
 * the tenant whose allowlist names the upstream, egress_denied for the other.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import { startEgress, type Egress } from '../../src/egress/wiring.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { testConfigObject } from '../helpers/platform.ts';
import { tempDir } from '../helpers/tmp.ts';
import { appBundle } from '../helpers/platform.ts';

let server: Server;
let port: number;
let hits = 0;
let dir: Awaited<ReturnType<typeof tempDir>>;
let egress: Egress;
let platform: Platform;
let source: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ price: 42.5, path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  dir = await tempDir();
  const raw = testConfigObject(dir.path, [
    { id: 'partner', isolation: 'database', allow: [`127.0.0.1:${port}`] },
    { id: 'internal', isolation: 'schema', allow: [] },
  ]) as Record<string, any>;
  raw.deployment.egress_proxy = { host: '127.0.0.1', port: 0 };
  const config = validateConfig(raw, dir.path);
  const logger = pino({ level: 'silent' });
  egress = await startEgress(config, { logger, ephemeralPort: true });
  platform = await openPlatform(config, { logger, fetchBinding: egress.fetchBinding });
  source = await readFile(new URL('../../sample-miniapps/partner-quote/partner-quote.js', import.meta.url), 'utf8');
});
afterAll(async () => {
  await platform?.close();
  await egress?.close();
  await new Promise((r) => server?.close(r));
  await dir?.dispose();
});

async function getQuote(tenantId: string, args: unknown) {
  const tenant = platform.tenants.get(tenantId);
  const { info } = await platform.host.launch(tenant, appBundle('partner-quote', source), null);
  try {
    return JSON.parse(await platform.host.call(tenant, null, info.id, 'getQuote', JSON.stringify(args)));
  } finally {
    platform.host.disposeById(info.id);
  }
}

describe('sample partner-quote', () => {
  it('should fetch the quote through the proxy for the allowed tenant, then serve it from storage', async () => {
    const first = await getQuote('partner', { symbol: 'ACME', base: `http://127.0.0.1:${port}` });
    expect(first).toMatchObject({ symbol: 'ACME', quote: { price: 42.5, path: '/quote?symbol=ACME' } });
    const before = hits;
    const second = await getQuote('partner', { symbol: 'ACME', base: `http://127.0.0.1:${port}` });
    expect(second).toMatchObject({ cached: true, quote: { price: 42.5 } });
    expect(hits).toBe(before);
  });

  it('should refuse the same upstream to a tenant whose allowlist does not name it', async () => {
    const before = hits;
    const err = await getQuote('internal', { symbol: 'ACME', base: `http://127.0.0.1:${port}` }).catch((e) => e);
    expect(err.code).toBe('miniapp_error');
    expect(err.message).toContain('[egress_denied]');
    expect(hits).toBe(before);
  });
});
