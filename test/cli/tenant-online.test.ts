/**
 * `isohost tenant export|import|purge` while a real `isohost serve` holds the stores (issue 9,
 * deliverable 3): through the server's admin socket, and into a fresh data dir with no server.
 * Everything runs as the real CLI and a real server in child processes; calls go over HTTP.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, ROOT } from '../helpers/cli.ts';
import { startServe, type ServeProcess } from '../helpers/http-cli.ts';
import { tempDir } from '../helpers/tmp.ts';

// Several CLI processes and two servers per case: allow for a loaded CI box.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

type Line = Record<string, unknown> & { kind: string };

const tenant = (id: string, isolation: 'schema' | 'database') => ({
  id,
  storage: { namespace: `ns-${id}`, isolation },
  identity: { provider: 'iam-internal', realm: `realm-${id}` },
});

let dirA: Awaited<ReturnType<typeof tempDir>>;
let dirB: Awaited<ReturnType<typeof tempDir>>;
let dirC: Awaited<ReturnType<typeof tempDir>>;
let work: Awaited<ReturnType<typeof tempDir>>;
let cfgA: string;
let cfgB: string;
let serverA: ServeProcess;
const tokens: Record<string, string> = {};
let v1: string;
let v2: string;
let exportA: string;

const A = () => ['--config', cfgA, '--data', dirA.path];
const B = () => ['--config', cfgB, '--data', dirB.path];
const C = () => ['--config', cfgB, '--data', dirC.path];

async function token(args: string[], id: string): Promise<string> {
  const r = await cli(['token', ...args, '--tenant', id, '--sub', 'alice', '--scope', 'apps:call apps:deploy']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function api(server: ServeProcess, path: string, auth: string, init: { method?: string; json?: unknown; js?: string } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${auth}` };
  let body: string | undefined;
  if (init.json !== undefined) [headers['content-type'], body] = ['application/json', JSON.stringify(init.json)];
  if (init.js !== undefined) [headers['content-type'], body] = ['application/javascript', init.js];
  const res = await fetch(`${server.address}${path}`, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const call = (server: ServeProcess, id: string, method: string, args: unknown = {}) => api(server, `/v1/tenants/${id}/apps/notes/calls/${method}`, tokens[id]!, { json: args });
const parseLines = (text: string): Line[] => text.trim().split('\n').map((l) => JSON.parse(l) as Line);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** An export without its header (which names the source tenant and the time) and realm keys. */
const body = (text: string) => text.trim().split('\n').filter((l) => !/^\{"kind":"(isohost-tenant-export|realm_key|end)"/.test(l));

/** Ports the process listens on over TCP (its socket inodes matched against /proc/net/tcp*). */
async function tcpListenPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((x, y) => x - y);
}

beforeAll(async () => {
  [dirA, dirB, dirC, work] = await Promise.all([tempDir(), tempDir(), tempDir(), tempDir()]);
  cfgA = join(work.path, 'a.json');
  cfgB = join(work.path, 'b.json');
  await writeFile(cfgA, JSON.stringify({ tenants: [tenant('a', 'schema'), tenant('b', 'database'), tenant('c', 'schema')] }));
  await writeFile(cfgB, JSON.stringify({ tenants: [tenant('d', 'database')] }));
  v1 = await readFile(join(ROOT, 'sample-miniapps/notes/notes.js'), 'utf8');
  v2 = `${v1}\n// version 2\n`;
  serverA = await startServe([...A(), '--port', '0', '--egress-port', '0']);
  for (const id of ['a', 'b', 'c']) tokens[id] = await token(A(), id);
  for (const [id, sources] of [['a', [v1, v2]], ['b', [v1]]] as const) {
    for (const js of sources) expect((await api(serverA, `/v1/tenants/${id}/apps/notes`, tokens[id]!, { method: 'PUT', js })).status).toBe(201);
    expect((await call(serverA, id, 'addNote', { text: `hello from ${id}` })).status).toBe(200);
  }
});

afterAll(async () => {
  await serverA?.stop();
  await Promise.all([dirA?.dispose(), dirB?.dispose(), dirC?.dispose(), work?.dispose()]);
});

describe('the admin socket of isohost serve', () => {
  it('should be a 0600 Unix socket in data_dir, and the server should listen on no TCP port but the API and the egress proxy', async () => {
    const s = await stat(join(dirA.path, 'admin.sock'));
    expect(s.isSocket()).toBe(true);
    expect(s.mode & 0o777).toBe(0o600);
    const serving = serverA.stderr().split('\n').find((l) => l.includes('"isohost serving"'))!;
    const { address, egress_proxy } = JSON.parse(serving) as { address: string; egress_proxy: string };
    const expected = [Number(new URL(address).port), Number(new URL(egress_proxy).port)].sort((x, y) => x - y);
    expect(await tcpListenPorts(serverA.child.pid!)).toEqual(expected);
  });
});

describe('isohost tenant export|import|purge while serve runs', () => {
  it('should export data, bundles, versions and realm public keys of one tenant through the running server', async () => {
    const locked = await cli(['run', 'sample-miniapps/notes/notes.js', ...A(), '--tenant', 'a', '--call', 'listNotes']);
    expect(locked.lastError?.error?.code).toBe('storage_error'); // the server holds the store
    exportA = join(work.path, 'a.ndjson');
    const r = await cli(['tenant', 'export', 'a', ...A(), '--out', exportA]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('"via":"admin-socket"');
    expect((await stat(exportA)).mode & 0o777).toBe(0o600);
    const lines = parseLines(await readFile(exportA, 'utf8'));
    expect(lines[0]).toMatchObject({ kind: 'isohost-tenant-export', format: 1, tenant: 'a' });
    expect(lines.at(-1)).toEqual({ kind: 'end', entries: lines.length - 2 });

    const jwks = (await (await fetch(`${serverA.address}/realms/realm-a/.well-known/jwks.json`)).json()) as { keys: object[] };
    const keys = lines.filter((l) => l.kind === 'realm_key');
    expect(keys.map(({ kind: _, realm: __, ...jwk }) => jwk)).toEqual(jwks.keys);
    for (const k of keys) expect(k).not.toHaveProperty('d');

    const [app] = lines.filter((l) => l.kind === 'app') as unknown as { record: { active: string; versions: { sha256: string; version: string }[] } }[];
    expect(app!.record.versions.map((v) => v.sha256)).toEqual([sha256(v1), sha256(v2)]);
    expect(app!.record.active).toBe(sha256(v2).slice(0, 16));
    const bundles = lines.filter((l) => l.kind === 'bundle');
    expect(bundles.map((b) => b.source)).toEqual([v1, v2]);
    expect(bundles.map((b) => b.sha256)).toEqual([sha256(v1), sha256(v2)]);
    const data = lines.filter((l) => l.kind === 'data');
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ app: 'notes', value: { text: 'hello from a' } });
  });

  it('should restore an export into a fresh data dir as another tenant, where the same calls give the same results', async () => {
    const r = await cli(['tenant', 'import', exportA, '--tenant', 'd', ...B()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('"via":"store"');
    expect(JSON.parse(r.stdout)).toEqual({ tenant: 'd', from: 'a', apps: 1, versions: 2, entries: 1, realm_keys_ignored: 1 });

    const serverB = await startServe([...B(), '--port', '0', '--egress-port', '0']);
    try {
      tokens.d = await token(B(), 'd');
      const listA = await call(serverA, 'a', 'listNotes');
      const listD = await call(serverB, 'd', 'listNotes');
      expect(listD).toEqual(listA);
      expect((listD.body.result as { notes: unknown[] }).notes).toHaveLength(1);
      const appsA = await api(serverA, '/v1/tenants/a/apps', tokens.a!);
      expect(await api(serverB, '/v1/tenants/d/apps', tokens.d!)).toEqual(appsA);
      // Online and offline run the same export: the restored tenant exports the same lines.
      const again = await cli(['tenant', 'export', 'd', ...B()]);
      expect(again.code, again.stderr).toBe(0);
      expect(body(again.stdout)).toEqual(body(await readFile(exportA, 'utf8')));
    } finally {
      await serverB.stop();
    }
  });

  it('should import into a tenant of the running server, whose next call sees the restored app and data', async () => {
    const r = await cli(['tenant', 'import', exportA, '--tenant', 'c', ...A()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('"via":"admin-socket"');
    expect(JSON.parse(r.stdout)).toMatchObject({ tenant: 'c', from: 'a', apps: 1, versions: 2, entries: 1 });
    expect(await call(serverA, 'c', 'listNotes')).toEqual(await call(serverA, 'a', 'listNotes'));
  });

  it('should refuse a truncated or tampered export with exit 1 and a coded error, and write nothing', async () => {
    const good = await readFile(exportA, 'utf8');
    const before = await cli(['tenant', 'export', 'b', ...A()]);
    const lines = good.trim().split('\n');
    const bundle = lines.findIndex((l) => l.startsWith('{"kind":"bundle"'));
    const key = lines.findIndex((l) => l.startsWith('{"kind":"realm_key"'));
    const bad = {
      truncated: [lines.slice(0, -1), /truncated/],
      'cut mid-line': [[...lines.slice(0, -1), lines.at(-1)!.slice(0, 10)], /not JSON/],
      'a bundle edited': [lines.map((l, i) => (i === bundle ? l.replace('Notes with', 'Notes w1th') : l)), /sha256/],
      'a private key member': [lines.map((l, i) => (i === key ? l.replace('"alg"', '"d":"AAAA","alg"') : l)), /unrecognized key|"d"/i],
      'a trailer that miscounts': [[...lines.slice(0, -1), '{"kind":"end","entries":1}'], /counts 1 entries/],
    } as const;
    for (const [name, [content, message]] of Object.entries(bad)) {
      const file = join(work.path, `bad-${name.replace(/\W/g, '-')}.ndjson`);
      await writeFile(file, content.join('\n') + '\n');
      // Into the running server (socket); two of them also into a fresh data dir (stores opened by the CLI).
      const targets = name === 'truncated' || name === 'a bundle edited' ? ([[A(), 'b'], [C(), 'd']] as const) : ([[A(), 'b']] as const);
      for (const [args, id] of targets) {
        const r = await cli(['tenant', 'import', file, '--tenant', id, ...args]);
        expect(r.code, `${name}: ${r.stderr}`).toBe(1);
        expect(r.lastError?.error?.code, name).toBe('invalid_request');
        expect(r.lastError?.error?.message, name).toMatch(message);
      }
    }
    const after = await cli(['tenant', 'export', 'b', ...A()]);
    expect(body(after.stdout)).toEqual(body(before.stdout));
    expect(body(after.stdout).length).toBeGreaterThan(0);
    const fresh = await cli(['tenant', 'export', 'd', ...C()]);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(body(fresh.stdout)).toEqual([]);
  });

  it('should purge one tenant through the running server, leave the others intact and keep serving', async () => {
    const r = await cli(['tenant', 'purge', 'a', ...A(), '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ tenant: 'a', purged: true });
    const gone = parseLines((await cli(['tenant', 'export', 'a', ...A()])).stdout);
    expect(gone.map((l) => l.kind).filter((k) => k === 'app' || k === 'bundle' || k === 'data')).toEqual([]);
    expect((await call(serverA, 'a', 'listNotes')).body).toMatchObject({ error: { code: 'not_found' } });
    const b = await call(serverA, 'b', 'listNotes');
    expect(b.status).toBe(200);
    expect((b.body.result as { notes: { text: string }[] }).notes.map((n) => n.text)).toEqual(['hello from b']);
    expect((await call(serverA, 'c', 'listNotes')).status).toBe(200);
    expect((await fetch(`${serverA.address}/healthz`)).status).toBe(200);
  });
});
