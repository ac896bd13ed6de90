/**
 * `isohost serve` end to end (CONTRACT §5), as an operator runs it: a config file with
 * ephemeral ports, a token from `isohost token`, a bundle deployed and called over a real
 * socket, the sample `notes` app deployed on first start, SIGTERM letting an in-flight call
 * finish and exiting 0, and the store reopening cleanly for `isohost tenant export`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { runCli, startServe, type ServeProcess } from '../helpers/http-cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const A = 'business-unit-a';
const B = 'partner-acme';
const APP = bundleOf({
  hello: (args: { name: string }) => `hello, ${args.name}`,
  async nap(args: { ms: number }) {
    await new Promise((resolve) => setTimeout(resolve, args.ms));
    return 'rested';
  },
});

let dir: { path: string; dispose: () => Promise<void> };
let configFile: string;
let dataDir: string;
let serve: ServeProcess | undefined;
const common = () => ['--config', configFile, '--data', dataDir];

beforeAll(async () => {
  dir = await tempDir('isohost-e2e-');
  configFile = join(dir.path, 'isohost.json');
  dataDir = join(dir.path, 'data');
  const config = {
    deployment: {
      data_dir: './not-used', // --data overrides it
      data_residency: 'e2e-lab',
      listen: { host: '127.0.0.1', port: 8080 }, // --port 0 overrides it
      egress_proxy: { host: '127.0.0.1', port: 0 },
      warm_pool: 1,
      samples: true,
    },
    tenants: [
      { id: A, storage: { namespace: 'bu-a', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'bu-a' } },
      { id: B, storage: { namespace: 'acme', isolation: 'database' }, identity: { provider: 'iam-internal', realm: 'acme' } },
    ],
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  serve = await startServe([...common(), '--port', '0']);
}, 60_000);

afterAll(async () => {
  if (serve !== undefined && serve.child.exitCode === null) await serve.stop('SIGKILL');
  await dir?.dispose();
});

async function token(tenant: string, sub: string): Promise<string> {
  const res = await runCli(['token', ...common(), '--tenant', tenant, '--sub', sub, '--scope', 'apps:call apps:deploy']);
  expect(res.code, res.stderr).toBe(0);
  const jwt = res.stdout.trim();
  expect(jwt).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  return jwt;
}

async function api(method: string, path: string, jwt: string, body?: string, contentType = 'application/json') {
  const res = await fetch(`${serve!.address}${path}`, {
    method,
    headers: { authorization: `Bearer ${jwt}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, requestId: res.headers.get('x-request-id'), json: (await res.json()) as any };
}

describe('isohost serve', () => {
  let alice: string;

  it('should listen on a free port and log "isohost serving" on stderr', async () => {
    expect(serve!.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(serve!.address).not.toBe('http://127.0.0.1:8080');
    const line = serve!.stderr().split('\n').find((l) => l.includes('"isohost serving"'));
    expect(JSON.parse(line!)).toMatchObject({ address: serve!.address, data_dir: dataDir });
    const health = await fetch(`${serve!.address}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${serve!.address}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { storage: 'ok', egress_proxy: 'ok' }, deployment: { data_residency: 'e2e-lab' } });
  });

  it('should deploy a bundle with a token from `isohost token` and call it', async () => {
    alice = await token(A, 'alice');
    const put = await api('PUT', `/v1/tenants/${A}/apps/greeter`, alice, APP, 'application/javascript');
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ app: 'greeter', size: Buffer.byteLength(APP) });
    const call = await api('POST', `/v1/tenants/${A}/apps/greeter/calls/hello`, alice, JSON.stringify({ name: 'e2e' }));
    expect(call).toMatchObject({ status: 200, json: { result: 'hello, e2e' } });
    expect(call.requestId).toBeTruthy();
  });

  it('should have deployed the sample notes app on first start and store a note', async () => {
    const add = await api('POST', `/v1/tenants/${A}/apps/notes/calls/addNote`, alice, JSON.stringify({ text: 'written over the socket' }));
    expect(add.status).toBe(200);
    expect(add.json.result).toMatchObject({ text: 'written over the socket' });
    const list = await api('POST', `/v1/tenants/${A}/apps/notes/calls/listNotes`, alice, '{}');
    expect(list.json.result.notes.map((n: { text: string }) => n.text)).toContain('written over the socket');
  });

  it("should refuse another tenant's token on this tenant's path over the socket", async () => {
    const acme = await token(B, 'alice');
    const res = await api('POST', `/v1/tenants/${A}/apps/notes/calls/listNotes`, acme, '{}');
    expect(res).toMatchObject({ status: 401, json: { error: { code: 'unauthenticated' } } });
  });

  it('should finish an in-flight call on SIGTERM and exit 0', async () => {
    const inFlight = api('POST', `/v1/tenants/${A}/apps/greeter/calls/nap`, alice, JSON.stringify({ ms: 700 }));
    await new Promise((r) => setTimeout(r, 250));
    const exit = serve!.stop('SIGTERM');
    expect(await inFlight).toMatchObject({ status: 200, json: { result: 'rested' } });
    expect(await exit).toBe(0);
    expect(serve!.stderr()).toMatch(/"msg":"stopped"/);
  }, 30_000);

  it('should leave a store that reopens cleanly: tenant export finds the note', async () => {
    const res = await runCli(['tenant', 'export', A, ...common()]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; app: string; key: string; value: { text?: string } });
    expect(lines.some((l) => l.kind === 'data' && l.app === 'notes' && l.value.text === 'written over the socket')).toBe(true);
    const other = await runCli(['tenant', 'export', B, ...common()]);
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).not.toContain('written over the socket');
  }, 30_000);
});
