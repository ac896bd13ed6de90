/**
 * With the tenant-wide proxy client `serve` and `run` use, each audit line still names
 * the calling app and instance (issue 3, audit), taken from the header the host's fetch
 * binding sets — and a guest cannot forge it.
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import { startEgress, type Egress } from '../../src/egress/wiring.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { appBundle, testConfigObject } from '../helpers/platform.ts';
import { tempDir } from '../helpers/tmp.ts';

const lines: Record<string, unknown>[] = [];
let server: Server;
let port: number;
let dir: Awaited<ReturnType<typeof tempDir>>;
let egress: Egress;
let platform: Platform;

const app = bundleOf({
  async get({ url }: { url: string }) {
    const res = await fetch(url, { headers: { 'x-isohost-call': 'forged-app/i_forged' } });
    return res.status;
  },
});

beforeAll(async () => {
  server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  dir = await tempDir();
  const raw = testConfigObject(dir.path, [{ id: 'audited', allow: [`127.0.0.1:${port}`] }]) as Record<string, any>;
  raw.deployment.egress_proxy = { host: '127.0.0.1', port: 0 };
  const config = validateConfig(raw, dir.path);
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  egress = await startEgress(config, { logger: pino({ level: 'info' }, sink), ephemeralPort: true });
  platform = await openPlatform(config, { logger: pino({ level: 'silent' }), fetchBinding: egress.fetchBinding });
});
afterAll(async () => {
  await platform?.close();
  await egress?.close();
  await new Promise((r) => server?.close(r));
  await dir?.dispose();
});

describe('egress audit attribution', () => {
  it('should name the calling app and instance, not what the guest claims', async () => {
    const tenant = platform.tenants.get('audited');
    const { info } = await platform.host.launch(tenant, appBundle('audited-app', app), null);
    expect(await platform.host.call(tenant, null, info.id, 'get', JSON.stringify({ url: `http://127.0.0.1:${port}/x` }))).toBe('200');
    const decision = lines.find((l) => l.decision === 'allow');
    expect(decision).toMatchObject({ tenant: 'audited', app: 'audited-app', instance: info.id });
    expect(JSON.stringify(lines)).not.toContain('forged');
  });
});
