/**
 * The tenant export/import (src/admin/tenant-archive.ts) and the admin socket (src/admin/socket.ts)
 * in process, on a real platform (real LevelDB in a temp dir): the rules a file must follow,
 * the quota, and how the socket treats what it finds at its path.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { readBundle } from '../../src/apps/bundle.ts';
import { connectAdmin } from '../../src/admin/client.ts';
import { ndjsonLines } from '../../src/admin/ndjson-lines.ts';
import { startAdminSocket } from '../../src/admin/socket.ts';
import { exportTenant, importTenant, type ArchiveTarget } from '../../src/admin/tenant-archive.ts';
import { IsohostError } from '../../src/errors.ts';
import { createIdentity } from '../../src/identity/registry.ts';
import { startTestPlatform } from '../helpers/platform.ts';

let platform: Awaited<ReturnType<typeof startTestPlatform>>;
const SOURCE = 'export function hello() { return "hi"; }\n';

const target = (id: string): ArchiveTarget => ({ tenant: platform.tenants.get(id), apps: platform.apps, maxBundleBytes: 5 * 1024 * 1024 });
const identity = () => createIdentity({ dataDir: platform.dataDir, tenants: platform.config.tenants });

async function exported(id: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const l of exportTenant({ ...target(id), realmJwks: (realm) => identity().jwks(realm), node: 'test' })) lines.push(l.slice(0, -1));
  return lines;
}

async function* each(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

const importLines = (id: string, lines: string[]) => importTenant(target(id), () => each(lines));

async function refused(id: string, lines: string[]): Promise<IsohostError> {
  const before = await exported(id);
  const err = await importLines(id, lines).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(IsohostError);
  expect((await exported(id)).slice(1)).toEqual(before.slice(1)); // nothing written
  return err as IsohostError;
}

beforeAll(async () => {
  platform = await startTestPlatform([{ id: 'src' }, { id: 'dst', isolation: 'database' }, { id: 'tiny', limits: { storage_mb: 0.0001 } }]);
  const src = platform.tenants.get('src');
  await platform.apps.deploy(src, 'hello', readBundle(Buffer.from(SOURCE), 1 << 20), ['hello']);
  await src.store.app('hello').set('greeting', JSON.stringify({ text: 'x'.repeat(200) }));
  await src.store.app('other').set('k', '1');
});

afterAll(() => platform?.dispose());

describe('tenant export and import', () => {
  it('should restore an export into another tenant, which then exports the same apps, bundles and data', async () => {
    const lines = await exported('src');
    expect(await importLines('dst', lines)).toEqual({ tenant: 'dst', from: 'src', apps: 1, versions: 1, entries: 2, realm_keys_ignored: 1 });
    const again = await exported('dst');
    const body = (ls: string[]) => ls.filter((l) => !/"kind":"(isohost-tenant-export|realm_key|end)"/.test(l));
    expect(body(again)).toEqual(body(lines));
    expect((await platform.apps.active(platform.tenants.get('dst'), 'hello')).source).toBe(SOURCE);
  });

  it('should refuse an import that would exceed the quota, writing nothing', async () => {
    const err = await refused('tiny', await exported('src'));
    expect(err.code).toBe('resource_exhausted');
  });

  it('should count the bundles against the quota before writing: apps with no data over quota write nothing', async () => {
    // Only the header, app, bundle and trailer lines: data alone would fit in 'tiny'.
    const lines = (await exported('src')).filter((l) => !l.startsWith('{"kind":"data"'));
    const trailer = `{"kind":"end","entries":${lines.length - 2}}`;
    const err = await refused('tiny', [...lines.slice(0, -1), trailer]);
    expect(err.code).toBe('resource_exhausted');
  });

  it('should refuse files that break the rules between lines, writing nothing', async () => {
    const lines = await exported('src');
    const data = lines.findIndex((l) => l.startsWith('{"kind":"data"'));
    const bundle = lines.findIndex((l) => l.startsWith('{"kind":"bundle"'));
    const end = (n: number) => `{"kind":"end","entries":${n}}`;
    const cases: [string, string[], RegExp][] = [
      ['empty', [], /empty/],
      ['no header', lines.slice(1), /first line is not its header/],
      ['a second header', [lines[0]!, ...lines.slice(0, -1), end(lines.length - 1)], /a second header/],
      ['a line after the trailer', [...lines, lines[data]!], /after the "end" trailer/],
      ['a data key twice', [...lines.slice(0, -1), lines[data]!, end(lines.length - 1)], /twice/],
      ['a bundle with no app line before it', [lines[0]!, lines[bundle]!, end(1)], /does not follow an app line/],
      ['an app without its bundle', [...lines.slice(0, bundle), ...lines.slice(bundle + 1, -1), end(lines.length - 3)], /lacks the bundle/],
      ['a future format', [lines[0]!.replace('"format":1', '"format":2'), ...lines.slice(1)], /format 2 is not supported/],
      ['an unknown kind', [...lines.slice(0, -1), '{"kind":"secret"}', end(lines.length - 1)], /kind/],
      ['a value over 1 MiB', [...lines.slice(0, -1), JSON.stringify({ kind: 'data', app: 'big', key: 'k', value: 'x'.repeat(1_048_577) }), end(lines.length - 1)], /limit is 1 MiB/],
    ];
    for (const [name, input, message] of cases) {
      const err = await refused('dst', input);
      expect(err.message, name).toMatch(message);
    }
  });

  it('should split lines with a cap on one line and refuse bad UTF-8', async () => {
    const chunks = async function* (...parts: Buffer[]) {
      yield* parts;
    };
    const read = async (max: number, ...parts: Buffer[]) => {
      const out: string[] = [];
      for await (const l of ndjsonLines(chunks(...parts), max)) out.push(l);
      return out;
    };
    expect(await read(10, Buffer.from('ab\nc'), Buffer.from('d\n'), Buffer.from('é'))).toEqual(['ab', 'cd', 'é']);
    await expect(read(10, Buffer.from('0123456'), Buffer.from('789abc\n'))).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(read(10, Buffer.from([0x61, 0xff, 0x0a]))).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('the admin socket', () => {
  const path = () => join(platform.dataDir, 'admin.sock');
  const start = () => startAdminSocket({ platform, identity: identity(), logger: pino({ level: 'silent' }) });

  it('should listen with mode 0600, answer unknown routes with a coded 404 and remove its file on close', async () => {
    const admin = await start();
    try {
      expect(admin.path).toBe(path());
      expect((await stat(path())).mode & 0o777).toBe(0o600);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ socketPath: path(), path: '/tenants/nobody/export' }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(answer.status).toBe(404);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'not_found' } });
    } finally {
      await admin.close();
    }
    await expect(stat(path())).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('should remove a stale socket (which the CLI treats as no server), refuse a live one and leave a file that is not a socket alone', async () => {
    // A server killed by SIGKILL leaves its socket file behind (a clean close removes it).
    const other = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path())}, () => console.log('up'))`]);
    await once(other.stdout, 'data');
    await expect(start()).rejects.toMatchObject({ code: 'unavailable' }); // live: another process answers
    other.kill('SIGKILL');
    await once(other, 'exit');
    expect((await stat(path())).isSocket()).toBe(true);
    expect(await connectAdmin(platform.dataDir)).toBeNull(); // the CLI opens the stores itself
    const admin = await start();
    const socket = await connectAdmin(platform.dataDir);
    expect(socket).not.toBeNull();
    socket!.destroy();
    await admin.close();

    await writeFile(path(), 'not a socket');
    await expect(start()).rejects.toMatchObject({ code: 'unavailable' });
    expect((await stat(path())).isFile()).toBe(true);
  });
});
