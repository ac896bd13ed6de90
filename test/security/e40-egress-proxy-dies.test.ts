/**
 * THREATS E40 and D28 with the proxy as its own process (`isohost egress-proxy`,
 * `egress_proxy.external: true`), as an operator runs it:
 *
 * - D28: while a mini-app fetches, the host process opens TCP connections to the proxy
 *   and nowhere else (every connection attempt is recorded through diagnostics_channel).
 * - E40: the proxy process is killed with SIGKILL mid-run → every fetch fails with a
 *   coded, credential-free `egress_failed` the mini-app can catch; calls that do not
 *   fetch, storage and /healthz keep working; a restarted proxy serves fetches again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { BIN } from '../helpers/cli.ts';
import { startUpstream, type Upstream, watchConnections } from '../helpers/egress-fixtures.ts';
import { expectSanitised, freePort, writeConfigFile } from '../helpers/security-fixtures.ts';
import { startServerOn, type SecurityServer } from '../helpers/security-server.ts';
import { tempDir } from '../helpers/tmp.ts';

declare const fc: any;

const app = bundleOf({
  async get(url: string) {
    try {
      const res = await fetch(url);
      return { status: res.status, text: await res.text() };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: e.message };
    }
  },
  async store(v: number) {
    await fc.storage.set('v', v);
    return fc.storage.get('v');
  },
});

let dir: Awaited<ReturnType<typeof tempDir>>;
let configFile: string;
let up: Upstream;
let proxyPort: number;
let proxy: ChildProcess | undefined;
let server: SecurityServer;

/** `isohost egress-proxy --config FILE`; resolves once it printed its URL. */
function startProxyProcess(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'egress-proxy', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ISOHOST_LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('"egress_proxy"')) resolve(child);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('exit', (code) => reject(new Error(`egress-proxy exited (${code}): ${err}`)));
  });
}

async function killProxy(): Promise<void> {
  if (proxy === undefined || proxy.exitCode !== null || proxy.signalCode !== null) return;
  const exited = new Promise((resolve) => proxy!.once('exit', resolve));
  proxy.kill('SIGKILL');
  await exited;
}

const url = () => `http://127.0.0.1:${up.port}/hello`;
const call = async (method: string, args: unknown) => {
  const res = await server.oneShot('egress-tenant', 'app', method, args);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().result;
};

beforeAll(async () => {
  dir = await tempDir('isohost-sec-egress-');
  up = await startUpstream('upstream');
  proxyPort = await freePort();
  configFile = writeConfigFile(
    dir.path,
    [{ id: 'egress-tenant', namespace: 'ns-egress', allow: [`127.0.0.1:${up.port}`], limits: { cpu_ms: 1000, wall_ms: 5000 } }],
    { egress_proxy: { host: '127.0.0.1', port: proxyPort, external: true } },
  );
  proxy = await startProxyProcess();
  server = await startServerOn(configFile, { egress: true });
  expect((await server.deploy('egress-tenant', 'app', app)).statusCode).toBe(201);
});
afterAll(async () => {
  await killProxy();
  await server?.close();
  await up?.close();
  await dir?.dispose();
});

describe('the egress proxy as its own process', () => {
  it('should be the only address the host connects to while a mini-app fetches (D28)', async () => {
    const watch = watchConnections();
    try {
      expect(await call('get', url())).toEqual({ status: 200, text: 'ok from upstream' });
    } finally {
      watch.stop();
    }
    expect(watch.attempts.length).toBeGreaterThan(0);
    expect(new Set(watch.attempts)).toEqual(new Set([`127.0.0.1:${proxyPort}`]));
  });

  it('should fail fetches with a coded egress_failed once the proxy is killed, and keep serving (E40)', async () => {
    await killProxy();
    for (let i = 0; i < 3; i++) {
      const failed = await call('get', url());
      expect(failed).toMatchObject({ name: 'TypeError', code: 'egress_failed' });
      expectSanitised(failed.message, [dir.path, 'ns-egress']);
    }
    expect(await call('store', 7)).toBe(7);
    expect((await server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect(up.requests.length).toBe(1);
  });

  it('should serve fetches again once the proxy is back', async () => {
    proxy = await startProxyProcess();
    expect(await call('get', url())).toEqual({ status: 200, text: 'ok from upstream' });
  });
});
