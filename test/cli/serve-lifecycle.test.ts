/**
 * `isohost serve` as an init system sees it (issue 9): fatal start-up errors end the
 * command with one coded line and close what was opened; two servers on one box pick
 * their own proxy ports; SIGTERM drains (readiness 503, in-flight calls finish, exit 0);
 * SIGHUP re-reads the config without dropping unchanged tenants' calls; `--version`,
 * `help` and `COMMAND --help` print usage; every config error exits 2.
 */
import { createServer } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { startServe, type ServeProcess } from '../helpers/http-cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { serveCommand } from '../../src/cli/serve.ts';
import { loadConfig } from '../../src/config/load.ts';
import { openPlatform } from '../../src/platform.ts';
import pino from 'pino';

const SLOW_APP = `
export async function slow(args) { await new Promise((r) => setTimeout(r, args.ms)); return 'done'; }
export function ping() { return 'pong'; }
`;

function tenant(id: string, extra: Record<string, unknown> = {}) {
  return { id, storage: { namespace: id, isolation: 'schema' }, identity: { provider: 'iam-internal', realm: id }, ...extra };
}

async function writeConfig(file: string, tenants: unknown[], deployment: Record<string, unknown> = {}): Promise<void> {
  await writeFile(file, stringify({ deployment: { listen: { host: '127.0.0.1', port: 0 }, ...deployment }, tenants }));
}

/** A port nothing listens on right now (and a way to hold one). */
function holdPort(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      resolve({ port, close: () => new Promise((r) => s.close(() => r())) });
    });
  });
}

async function freePort(): Promise<number> {
  const h = await holdPort();
  await h.close();
  return h.port;
}

async function token(cfg: string, data: string, tenantId: string): Promise<string> {
  const r = await cli(['token', '--config', cfg, '--data', data, '--tenant', tenantId, '--sub', 'alice', '--scope', 'apps:call apps:deploy']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function deploy(address: string, tenantId: string, tok: string, app: string, source: string): Promise<void> {
  const res = await fetch(`${address}/v1/tenants/${tenantId}/apps/${app}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/javascript' },
    body: source,
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

function call(address: string, tenantId: string, tok: string, method: string, args: unknown = {}): Promise<Response> {
  return fetch(`${address}/v1/tenants/${tenantId}/apps/slow/calls/${method}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
}

async function waitFor(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('isohost serve: fatal start-up errors', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => dir.dispose());

  it('should exit 1 with one coded line naming the port and --port when the API port is taken', async () => {
    const held = await holdPort();
    try {
      const cfg = join(dir.path, 'port.yaml');
      await writeConfig(cfg, [tenant('alpha')]);
      const r = await cli(['serve', '--config', cfg, '--data', join(dir.path, 'd-port'), '--port', String(held.port)]);
      expect(r.code).toBe(1);
      expect(r.lastError?.error?.code).toBe('unavailable');
      expect(r.lastError?.error?.message).toContain(`:${held.port}`);
      expect(r.lastError?.error?.message).toContain('--port');
      expect(r.stderr).not.toContain('internal error');
    } finally {
      await held.close();
    }
  });

  it('should name --egress-port when the proxy port is taken', async () => {
    const held = await holdPort();
    try {
      const cfg = join(dir.path, 'eport.yaml');
      await writeConfig(cfg, [tenant('alpha')]);
      const r = await cli(['serve', '--config', cfg, '--data', join(dir.path, 'd-eport'), '--egress-port', String(held.port)]);
      expect(r.code).toBe(1);
      expect(r.lastError?.error?.code).toBe('unavailable');
      expect(r.lastError?.error?.message).toContain(`:${held.port}`);
      expect(r.lastError?.error?.message).toContain('--egress-port');
    } finally {
      await held.close();
    }
  });

  it('should close the proxy it started when the store is locked (in process: no exit to hide a leak)', async () => {
    const cfg = join(dir.path, 'locked.yaml');
    const data = join(dir.path, 'd-locked');
    await writeConfig(cfg, [tenant('alpha')]);
    const holder = await openPlatform(loadConfig(cfg, { dataDir: data }), { warmPool: 0, logger: pino({ level: 'silent' }) });
    const egressPort = await freePort();
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await expect(serveCommand(['--config', cfg, '--data', data, '--egress-port', String(egressPort)])).rejects.toMatchObject({ code: 'storage_error' });
    } finally {
      process.stderr.write = stderr;
      await holder.close();
    }
    // The proxy that had started is closed again: its port can be taken.
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(egressPort, '127.0.0.1', () => resolve());
    });
    await new Promise((r) => again.close(r));
  });

  it('should exit 1 promptly, with a coded line, when another serve holds the store', async () => {
    const cfg = join(dir.path, 'two.yaml');
    const data = join(dir.path, 'd-two');
    await writeConfig(cfg, [tenant('alpha')]);
    const first = await startServe(['--config', cfg, '--data', data]);
    try {
      const r = await cli(['serve', '--config', cfg, '--data', data], { timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      expect(r.lastError?.error?.code).toBe('storage_error');
      expect(r.lastError?.error?.message).toMatch(/locked/);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  });

  it('should let two servers with their own data dirs run side by side (the proxy picks a free port)', async () => {
    const cfg = join(dir.path, 'side.yaml');
    await writeConfig(cfg, [tenant('alpha')]);
    const a = await startServe(['--config', cfg, '--data', join(dir.path, 'd-a')]);
    const b = await startServe(['--config', cfg, '--data', join(dir.path, 'd-b')]);
    try {
      expect(a.address).not.toBe(b.address);
      expect((await fetch(`${b.address}/readyz`)).status).toBe(200);
    } finally {
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    }
  });

  it('should exit 2 for an invalid config, in serve and in config check', async () => {
    const cfg = join(dir.path, 'bad.yaml');
    await writeFile(cfg, stringify({ tenants: [{ ...tenant('alpha'), storage: { namespace: 'alpha', isolation: 'table' } }] }));
    const serve = await cli(['serve', '--config', cfg, '--data', join(dir.path, 'd-bad')]);
    expect(serve.code).toBe(2);
    expect(serve.lastError?.error?.code).toBe('config_invalid');
    const check = await cli(['config', 'check', cfg]);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('tenants[0].storage.isolation');
  });
});

describe('isohost serve: the ops listener', () => {
  it('should serve /metrics, /healthz and /readyz on ops_listen and keep /metrics off the API listener', async () => {
    const dir = await tempDir();
    try {
      const cfg = join(dir.path, 'ops.yaml');
      const opsPort = await freePort();
      await writeConfig(cfg, [tenant('alpha')], { ops_listen: { host: '127.0.0.1', port: opsPort } });
      const s = await startServe(['--config', cfg, '--data', join(dir.path, 'd')]);
      try {
        const ops = `http://127.0.0.1:${opsPort}`;
        expect((await fetch(`${ops}/metrics`)).status).toBe(200);
        expect((await fetch(`${ops}/readyz`)).status).toBe(200);
        expect((await fetch(`${ops}/healthz`)).status).toBe(200);
        expect((await fetch(`${s.address}/metrics`)).status).toBe(404);
        expect(s.stdout()).toContain(`${ops}/healthz`);
      } finally {
        expect(await s.stop()).toBe(0);
      }
    } finally {
      await dir.dispose();
    }
  });

  it('should name deployment.ops_listen.port when the ops port is taken', async () => {
    const dir = await tempDir();
    const held = await holdPort();
    try {
      const cfg = join(dir.path, 'ops-taken.yaml');
      await writeConfig(cfg, [tenant('alpha')], { ops_listen: { host: '127.0.0.1', port: held.port } });
      const r = await cli(['serve', '--config', cfg, '--data', join(dir.path, 'd')]);
      expect(r.code).toBe(1);
      expect(r.lastError?.error?.code).toBe('unavailable');
      expect(r.lastError?.error?.message).toContain(`:${held.port}`);
      expect(r.lastError?.error?.message).toContain('deployment.ops_listen.port');
    } finally {
      await held.close();
      await dir.dispose();
    }
  });
});

describe('isohost usage', () => {
  it('should print the version and exit 0', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^isohost \d+\.\d+\.\d+/);
  });

  it('should print usage for help, help COMMAND and COMMAND --help, exit 0, without starting anything', async () => {
    const help = await cli(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: isohost');
    for (const args of [['serve', '--help'], ['token', '--help'], ['help', 'serve'], ['tenant', '-h']]) {
      const r = await cli(args, { timeoutMs: 10_000 });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain(`isohost ${args[0] === 'help' ? args[1] : args[0]}`);
      expect(r.stderr).toBe('');
    }
  });
});

describe('isohost serve: samples only where asked', () => {
  it('should deploy no sample into a config that does not ask for them', async () => {
    const dir = await tempDir();
    try {
      const cfg = join(dir.path, 'plain.yaml');
      await writeConfig(cfg, [tenant('alpha')]);
      const s = await startServe(['--config', cfg, '--data', join(dir.path, 'd')]);
      try {
        const tok = await token(cfg, join(dir.path, 'd'), 'alpha');
        const res = await fetch(`${s.address}/v1/tenants/alpha/apps`, { headers: { authorization: `Bearer ${tok}` } });
        expect(res.status).toBe(200);
        expect(JSON.stringify(await res.json())).not.toMatch(/notes|profile|partner-quote/);
        expect(s.stdout()).not.toContain('sample');
      } finally {
        expect(await s.stop()).toBe(0);
      }
    } finally {
      await dir.dispose();
    }
  });

  it('should deploy the samples with deployment.samples: true', async () => {
    const dir = await tempDir();
    try {
      const cfg = join(dir.path, 'samples.yaml');
      await writeConfig(cfg, [tenant('alpha')], { samples: true });
      const s = await startServe(['--config', cfg, '--data', join(dir.path, 'd')]);
      try {
        const tok = await token(cfg, join(dir.path, 'd'), 'alpha');
        const res = await fetch(`${s.address}/v1/tenants/alpha/apps`, { headers: { authorization: `Bearer ${tok}` } });
        expect(JSON.stringify(await res.json())).toMatch(/notes/);
      } finally {
        expect(await s.stop()).toBe(0);
      }
    } finally {
      await dir.dispose();
    }
  });
});

describe('isohost serve: signals', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let cfg: string;
  let data: string;
  let s: ServeProcess;
  let alpha: string;

  beforeAll(async () => {
    dir = await tempDir();
    cfg = join(dir.path, 'isohost.yaml');
    data = join(dir.path, 'data');
    await writeConfig(cfg, [tenant('alpha', { limits: { wall_ms: 20_000 } })]);
    s = await startServe(['--config', cfg, '--data', data]);
    alpha = await token(cfg, data, 'alpha');
    await deploy(s.address, 'alpha', alpha, 'slow', SLOW_APP);
  });
  afterAll(async () => {
    await s?.stop('SIGKILL');
    await dir.dispose();
  });

  it('should add a tenant on SIGHUP and keep an unchanged tenant\'s in-flight call', async () => {
    const inFlight = call(s.address, 'alpha', alpha, 'slow', { ms: 1500 });
    await new Promise((r) => setTimeout(r, 200));
    await writeConfig(cfg, [tenant('alpha', { limits: { wall_ms: 20_000 } }), tenant('beta')]);
    s.child.kill('SIGHUP');
    await waitFor(() => s.stderr().includes('config reloaded'), 'the reload log line');
    expect(s.stderr()).toMatch(/"added":\["beta"\]/);
    const beta = await token(cfg, data, 'beta');
    await deploy(s.address, 'beta', beta, 'slow', SLOW_APP);
    const res = await call(s.address, 'beta', beta, 'ping');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: 'pong' });
    const slow = await inFlight;
    expect(slow.status).toBe(200);
    expect(await slow.json()).toEqual({ result: 'done' });
  });

  it('should refuse an invalid config on SIGHUP with a log line and keep the one in force', async () => {
    const before = s.stderr().length;
    await writeFile(cfg, 'tenants: [ { id: "Not A Slug" } ]\n');
    s.child.kill('SIGHUP');
    await waitFor(() => s.stderr().slice(before).includes('config reload refused'), 'the refusal log line');
    expect(s.stderr().slice(before)).toMatch(/"code":"config_invalid"/);
    expect((await call(s.address, 'alpha', alpha, 'ping')).status).toBe(200);
  });

  it('should remove a tenant on SIGHUP: its tokens no longer verify, the others go on', async () => {
    await writeConfig(cfg, [tenant('beta')]);
    const before = s.stderr().length;
    s.child.kill('SIGHUP');
    await waitFor(() => s.stderr().slice(before).includes('config reloaded'), 'the reload log line');
    expect((await call(s.address, 'alpha', alpha, 'ping')).status).toBe(401);
    const betaToken = await token(cfg, data, 'beta');
    expect((await call(s.address, 'beta', betaToken, 'ping')).status).toBe(200);
    // Put alpha back for the drain test.
    await writeConfig(cfg, [tenant('alpha', { limits: { wall_ms: 20_000 } }), tenant('beta')]);
    const again = s.stderr().length;
    s.child.kill('SIGHUP');
    await waitFor(() => s.stderr().slice(again).includes('config reloaded'), 'the reload log line');
  });

  it('should drain on SIGTERM: readiness 503 while an in-flight call finishes, then exit 0', async () => {
    expect((await fetch(`${s.address}/readyz`)).status).toBe(200);
    const inFlight = call(s.address, 'alpha', alpha, 'slow', { ms: 2000 });
    await new Promise((r) => setTimeout(r, 300));
    s.child.kill('SIGTERM');
    await waitFor(() => s.stderr().includes('draining'), 'the draining log line');
    const ready = await fetch(`${s.address}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'draining' });
    expect((await fetch(`${s.address}/healthz`)).status).toBe(200);
    const slow = await inFlight;
    expect(slow.status).toBe(200);
    expect(await slow.json()).toEqual({ result: 'done' });
    expect(await s.stop()).toBe(0);
    expect(s.stderr()).toContain('"msg":"stopped"');
  });
});
