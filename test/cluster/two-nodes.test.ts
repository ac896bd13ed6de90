/**
 * Issue 13: two `isohost serve` processes with one config and one PostgreSQL form one
 * platform. Each node has a config file of its own that differs from the other only in
 * `deployment.node_id` and `data_dir` (the node's own admin socket and sandbox files):
 * a node's name is part of its deployment, validated and reloaded like the rest of it, and
 * `isohost token` / `isohost realm` read the same file (an env variable would be one more
 * place for two nodes to silently disagree).
 *
 * Deploy on node 1, call on node 2; a token minted with node 1's config verifies on node 2;
 * a key rotated with node 2's config signs tokens node 1 accepts within seconds, and one
 * retired with node 1's config stops verifying on node 2; an instance
 * launched on node 1 is called and ended through node 2 (an unknown node is unavailable,
 * a forwarded request is never forwarded again); a tenant's quota holds across both nodes;
 * PostgreSQL restarted under live nodes fails calls with storage_error, then they succeed
 * without a restart of isohost; `kill -9` of a node mid-write loses no acknowledged write.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { runCli, startServe, type ServeProcess } from '../helpers/http-cli.ts';
import { postgresAvailable, postgresFixture, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';

declare const fc: any;

vi.setConfig({ testTimeout: 120_000 });

const A = 'bu-a';
const Q = 'small';
/** Q's quota: 64 KiB; its writes are 4 KiB values. */
const Q_MB = 0.0625;
const Q_BYTES = Math.floor(Q_MB * 1024 * 1024);

const APP = bundleOf({
  hello: (args: { name: string }) => `hello, ${args.name}`,
  async put(args: { key: string; value: unknown }) {
    try {
      await fc.storage.set(args.key, args.value);
      return { ok: true };
    } catch (err) {
      return { error: (err as { code?: string }).code };
    }
  },
  get: async (args: { key: string }) => (await fc.storage.get(args.key)) ?? null,
  async count(args: { prefix: string }) {
    let n = 0;
    let cursor: string | undefined;
    do {
      const page = await fc.storage.list({ prefix: args.prefix, cursor, limit: 1000 });
      n += page.entries.length;
      cursor = page.cursor ?? undefined;
    } while (cursor);
    return n;
  },
});
const COUNTER = bundleOf({
  bump: () => ((globalThis as any).n = ((globalThis as any).n ?? 0) + 1),
  async nap(args: { ms: number }) {
    await new Promise((resolve) => setTimeout(resolve, args.ms));
    return 'rested';
  },
});

const binaries = await postgresAvailable();
let server: PostgresServer | null = null;
let dir: { path: string; dispose: () => Promise<void> };
const configs: string[] = [];
const nodes: ServeProcess[] = [];

function configOf(url: string, node: string) {
  return {
    deployment: {
      node_id: node,
      data_dir: join(dir.path, node),
      listen: { host: '127.0.0.1', port: 8080 }, // --port 0 overrides it
      egress_proxy: { host: '127.0.0.1', port: 0 },
      warm_pool: 1,
      storage: { engine: 'postgres', url, pool_max: 4 },
    },
    tenants: [
      { id: A, storage: { namespace: 'bu-a', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'bu-a' } },
      { id: Q, storage: { namespace: 'small', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'small' }, limits: { storage_mb: Q_MB } },
    ],
  };
}

beforeAll(async () => {
  if (binaries === null) return;
  server = await startPostgres(binaries);
  const fx = await postgresFixture(server);
  dir = await tempDir('isohost-cluster-');
  for (const node of ['node-1', 'node-2']) {
    const file = join(dir.path, `${node}.json`);
    await writeFile(file, JSON.stringify(configOf(fx.url, node), null, 2));
    configs.push(file);
  }
  // One after the other: both provision the same tenants (they may also start at once, but two cores are shared here).
  for (const file of configs) nodes.push(await startServe(['--config', file, '--port', '0'], 60_000));
}, 180_000);

afterAll(async () => {
  for (const node of nodes) if (node.child.exitCode === null) await node.stop('SIGKILL');
  await server?.stop();
  await dir?.dispose();
});

async function token(node: number, tenant: string, sub = 'alice'): Promise<string> {
  const res = await runCli(['token', '--config', configs[node]!, '--tenant', tenant, '--sub', sub, '--scope', 'apps:call apps:deploy']);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout.trim();
}

async function api(node: number, method: string, path: string, jwt: string, body?: unknown, extra: Record<string, string> = {}) {
  const js = typeof body === 'string' && method === 'PUT';
  const res = await fetch(`${nodes[node]!.address}${path}`, {
    method,
    headers: { authorization: `Bearer ${jwt}`, ...extra, ...(body === undefined ? {} : { 'content-type': js ? 'application/javascript' : 'application/json' }) },
    ...(body === undefined ? {} : { body: js ? (body as string) : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: (text === '' ? null : JSON.parse(text)) as any };
}

const call = (node: number, jwt: string, tenant: string, app: string, method: string, args: unknown) => api(node, 'POST', `/v1/tenants/${tenant}/apps/${app}/calls/${method}`, jwt, args);

/** Retries `probe` until it returns true (the deadline only bounds a failing test). */
async function eventually(probe: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;

describe.skipIf(binaries === null)('two nodes over one PostgreSQL', () => {
  let alice: string;

  it('should name each node in its logs and metrics', async () => {
    for (const [i, node] of nodes.entries()) {
      const line = node.stderr().split('\n').find((l) => l.includes('"isohost serving"'));
      expect(JSON.parse(line!)).toMatchObject({ node: `node-${i + 1}` });
      const metrics = await (await fetch(`${node.address}/metrics`)).text();
      expect(metrics).toContain(`isohost_node_info{node="node-${i + 1}"} 1`);
    }
  });

  it('should call on node 2 an app deployed on node 1, with a token minted from node 1\'s config', async () => {
    alice = await token(0, A);
    expect((await api(0, 'PUT', `/v1/tenants/${A}/apps/greeter`, alice, APP)).status).toBe(201);
    expect(await call(1, alice, A, 'greeter', 'hello', { name: 'node 2' })).toMatchObject({ status: 200, json: { result: 'hello, node 2' } });
    // The keys are PostgreSQL's, not files of either node.
    for (const node of ['node-1', 'node-2']) {
      expect(existsSync(join(dir.path, node, 'egress.key'))).toBe(false);
      expect(existsSync(join(dir.path, node, 'realms'))).toBe(false);
    }
    // The data is shared too: written through node 1, read through node 2.
    expect(await call(0, alice, A, 'greeter', 'put', { key: 'k', value: 'from node 1' })).toMatchObject({ json: { result: { ok: true } } });
    expect(await call(1, alice, A, 'greeter', 'get', { key: 'k' })).toMatchObject({ json: { result: 'from node 1' } });
  });

  it('should serve on node 2 a new version deployed on node 1 once node 2\'s app record is re-read', async () => {
    const v2 = bundleOf({ hello: (args: { name: string }) => `hi again, ${args.name}` });
    expect((await api(0, 'PUT', `/v1/tenants/${A}/apps/greeter2`, alice, APP)).status).toBe(201);
    expect(await call(1, alice, A, 'greeter2', 'hello', { name: 'v1' })).toMatchObject({ json: { result: 'hello, v1' } });
    expect((await api(0, 'PUT', `/v1/tenants/${A}/apps/greeter2`, alice, v2)).status).toBe(201);
    await eventually(async () => (await call(1, alice, A, 'greeter2', 'hello', { name: 'v2' })).json.result === 'hi again, v2');
  });

  it('should accept on node 1, within seconds, a token signed by a key rotated with node 2\'s config', async () => {
    const before = kidOf(await token(1, A));
    const rotated = await runCli(['realm', 'rotate', A, '--config', configs[1]!]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const { kid } = JSON.parse(rotated.stdout) as { kid: string };
    expect(kid).not.toBe(before);
    const fresh = await token(1, A, 'bob');
    expect(kidOf(fresh)).toBe(kid);
    await eventually(async () => (await call(0, fresh, A, 'greeter', 'hello', { name: 'rotated' })).status === 200);
    // The key it replaced keeps verifying until retired; retired from node 1's config, node 2 refuses it.
    expect((await call(0, alice, A, 'greeter', 'hello', { name: 'old key' })).status).toBe(200);
    expect((await call(1, alice, A, 'greeter', 'hello', { name: 'old key' })).status).toBe(200);
    const retired = await runCli(['realm', 'retire', A, '--config', configs[0]!, '--', before]);
    expect(retired.code, retired.stderr).toBe(0);
    await eventually(async () => (await call(1, alice, A, 'greeter', 'hello', { name: 'retired' })).status === 401);
    expect((await call(1, fresh, A, 'greeter', 'hello', { name: 'current' })).status).toBe(200);
    alice = await token(0, A);
    expect(kidOf(alice)).toBe(kid);
  });

  it('should call and end through node 2 an instance launched on node 1', async () => {
    expect((await api(0, 'PUT', `/v1/tenants/${A}/apps/counter`, alice, COUNTER)).status).toBe(201);
    const launched = await api(0, 'POST', `/v1/tenants/${A}/apps/counter/instances`, alice, {});
    expect(launched.status).toBe(201);
    const id = launched.json.instance as string;
    expect(id).toMatch(/^i_node-1_[A-Za-z0-9_-]{24}$/);
    const bump = (node: number, headers: Record<string, string> = {}) => api(node, 'POST', `/v1/tenants/${A}/instances/${id}/calls/bump`, alice, {}, headers);
    expect(await bump(0)).toMatchObject({ status: 200, json: { result: 1 } });
    // The same isolate, reached through node 2.
    expect(await bump(1)).toMatchObject({ status: 200, json: { result: 2 } });
    // Another subject's token is refused by the owner, through node 2 as on node 1.
    const bob = await token(1, A, 'bob');
    expect((await api(1, 'POST', `/v1/tenants/${A}/instances/${id}/calls/bump`, bob, {})).json.error.code).toBe('not_found');
    // A request already forwarded is never forwarded again.
    const looped = await bump(1, { 'x-isohost-forwarded-by': 'node-1' });
    expect(looped).toMatchObject({ status: 503, json: { error: { code: 'unavailable' } } });
    expect((await api(1, 'DELETE', `/v1/tenants/${A}/instances/${id}`, alice)).status).toBe(204);
    const metrics = await (await fetch(`${nodes[1]!.address}/metrics`)).text();
    expect(metrics).toMatch(/isohost_forwarded_requests_total\{to="node-1",status="200"\} 1\n/);
    expect(metrics).toMatch(/isohost_forwarded_requests_total\{to="node-1",status="204"\} 1\n/);
    expect((await bump(0)).json.error.code).toBe('not_found');
  });

  it('should answer unavailable naming the node, not not_found, for an instance of a node that is not running', async () => {
    const ghost = `i_node-9_${'A'.repeat(24)}`;
    const res = await api(1, 'POST', `/v1/tenants/${A}/instances/${ghost}/calls/bump`, alice, {});
    expect(res).toMatchObject({ status: 503, json: { error: { code: 'unavailable' } } });
    expect(res.json.error.message).toContain('node-9 is not reachable');
    expect((await api(0, 'DELETE', `/v1/tenants/${A}/instances/${ghost}`, alice)).json.error.code).toBe('unavailable');
  });

  it('should hold a tenant\'s storage quota across both nodes', async () => {
    const q = await token(0, Q);
    expect((await api(1, 'PUT', `/v1/tenants/${Q}/apps/filler`, q, APP)).status).toBe(201);
    const value = 'x'.repeat(4000);
    let acknowledged = 0;
    const refusedOn = new Set<number>();
    for (let i = 0; i < 60 && refusedOn.size < 2; i++) {
      const node = i % 2;
      const res = await call(node, q, Q, 'filler', 'put', { key: `q${String(i).padStart(2, '0')}`, value });
      expect(res.status).toBe(200);
      if (res.json.result.ok === true) acknowledged++;
      else {
        expect(res.json.result.error).toBe('resource_exhausted');
        refusedOn.add(node);
      }
    }
    expect(refusedOn).toEqual(new Set([0, 1]));
    // Each entry costs its key and its JSON value; a quota kept in each node's memory would
    // have let each node fill it. The app's bundle and record count too, hence the slack below.
    const entry = 3 + JSON.stringify(value).length;
    expect(acknowledged * entry).toBeLessThanOrEqual(Q_BYTES);
    expect(acknowledged).toBeGreaterThanOrEqual(Math.floor(Q_BYTES / entry) - 2);
    expect(await call(0, q, Q, 'filler', 'count', { prefix: 'q' })).toMatchObject({ json: { result: acknowledged } });
  });

  it('should fail calls with storage_error while PostgreSQL is down and serve them again once it is back', async () => {
    await server!.stopServer('fast');
    try {
      for (const node of [0, 1]) {
        await eventually(async () => {
          const res = await call(node, alice, A, 'greeter', 'get', { key: 'k' });
          if (res.status === 200) return false; // the app record cached a moment ago
          expect(res).toMatchObject({ status: 503, json: { error: { code: 'storage_error' } } });
          return true;
        });
      }
    } finally {
      await server!.start();
    }
    for (const node of [0, 1]) {
      await eventually(async () => (await call(node, alice, A, 'greeter', 'get', { key: 'k' })).status === 200, 30_000);
      expect(await call(node, alice, A, 'greeter', 'get', { key: 'k' })).toMatchObject({ json: { result: 'from node 1' } });
    }
    // The nodes find each other again too (once node 2 has beaten since PostgreSQL came back).
    const launched = await api(1, 'POST', `/v1/tenants/${A}/apps/counter/instances`, alice, {});
    let first: { status: number; json: any } | undefined;
    await eventually(async () => (first = await api(0, 'POST', `/v1/tenants/${A}/instances/${launched.json.instance}/calls/bump`, alice, {})).status === 200);
    expect(first!.json.result).toBe(1);
  });

  it('should lose no acknowledged write when a node is killed with SIGKILL mid-write', async () => {
    const node1Instance = (await api(0, 'POST', `/v1/tenants/${A}/apps/counter/instances`, alice, {})).json.instance as string;
    const acknowledged: string[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        const res = await fetch(`${nodes[0]!.address}/v1/tenants/${A}/apps/greeter/calls/put`, {
          method: 'POST',
          headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
          body: JSON.stringify({ key, value: { i, w } }),
        }).then(async (r) => (r.status === 200 ? ((await r.json()) as { result: { ok?: boolean } }) : null), () => null);
        if (res?.result.ok === true) acknowledged.push(key);
        else if (res === null) return;
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await eventually(async () => acknowledged.length >= 40);
    // A call forwarded through node 2, running on node 1 when it dies.
    const napping = api(1, 'POST', `/v1/tenants/${A}/instances/${node1Instance}/calls/nap`, alice, { ms: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    nodes[0]!.child.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    expect(acknowledged.length).toBeGreaterThanOrEqual(40);
    expect(await napping).toMatchObject({ status: 503, json: { error: { code: 'unavailable', message: expect.stringContaining('node-1 is not reachable') } } });
    // Its instances are unreachable now, and said so: not not_found.
    const orphan = await api(1, 'POST', `/v1/tenants/${A}/instances/${node1Instance}/calls/bump`, alice, {});
    expect(orphan).toMatchObject({ status: 503, json: { error: { code: 'unavailable', message: expect.stringContaining('node-1 is not reachable') } } });
    for (const key of acknowledged) {
      const res = await call(1, alice, A, 'greeter', 'get', { key });
      expect(res.json.result, key).toMatchObject({ i: Number(key.split('-')[1]) });
    }
  });
});
