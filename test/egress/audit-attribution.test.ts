/**
 * Through the one credential path `serve`, `run` and tests share (startEgress: one proxy
 * client per instance, src/egress/instance-client.ts), every audit line names the calling
 * app and instance — for `http:` requests and for `https:` CONNECT tunnels alike (issue 11:
 * CONNECT lines used to carry only the tenant) — taken from the credential, so a guest
 * header claiming another app changes nothing.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import { startEgress, type Egress } from '../../src/egress/wiring.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { appBundle, testConfigObject } from '../helpers/platform.ts';
import { tempDir } from '../helpers/tmp.ts';
import { lineSink } from '../helpers/log-sink.ts';

const lines: Record<string, unknown>[] = [];
let server: Server;
let port: number;
let tls: TcpServer;
let tlsPort: number;
let dir: Awaited<ReturnType<typeof tempDir>>;
let egress: Egress;
let platform: Platform;

const app = bundleOf({
  async get({ url }: { url: string }) {
    const res = await fetch(url, { headers: { 'x-isohost-call': 'forged-app/i_forged' } });
    return res.status;
  },
  async getTls({ url }: { url: string }) {
    try {
      await fetch(url, { headers: { 'x-isohost-call': 'forged-app/i_forged' } });
      return 'fetched';
    } catch (e: any) {
      return e.code; // the "TLS" upstream hangs up: the tunnel was made, the handshake fails
    }
  },
});

beforeAll(async () => {
  server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  tls = createTcpServer((socket) => socket.destroy());
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  tlsPort = (tls.address() as { port: number }).port;
  dir = await tempDir();
  const raw = testConfigObject(dir.path, [{ id: 'audited', allow: [`127.0.0.1:${port}`, `127.0.0.1:${tlsPort}`] }]) as Record<string, any>;
  raw.deployment.egress_proxy = { host: '127.0.0.1', port: 0 };
  const config = validateConfig(raw, dir.path);
  const sink = lineSink((line) => lines.push(JSON.parse(line)));
  egress = await startEgress(config, { logger: pino({ level: 'info' }, sink), ephemeralPort: true });
  platform = await openPlatform(config, { logger: pino({ level: 'silent' }), fetchBinding: egress.fetchBinding });
});
afterAll(async () => {
  await platform?.close();
  await egress?.close();
  await new Promise((r) => server?.close(r));
  await new Promise((r) => tls?.close(r));
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

  it('should name the calling app and instance on an https: CONNECT line too', async () => {
    const tenant = platform.tenants.get('audited');
    const { info } = await platform.host.launch(tenant, appBundle('tls-app', app), null);
    expect(await platform.host.call(tenant, null, info.id, 'getTls', JSON.stringify({ url: `https://127.0.0.1:${tlsPort}/x` }))).toBe('"egress_failed"');
    let connect: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && connect === undefined; i++) {
      connect = lines.find((l) => l.method === 'CONNECT' && l.port === tlsPort);
      if (connect === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(connect).toMatchObject({ tenant: 'audited', app: 'tls-app', instance: info.id, decision: 'allow' });
    expect(JSON.stringify(lines)).not.toContain('forged');
  });
});
