/**
 * The partner's tools through the real CLI (issue 12): `init` makes a project that
 * type-checks against fc.d.ts alone; `build` bundles it (a syntax error is a coded error
 * naming the file and line); `deploy` uploads it to a real `serve` through the HTTP API,
 * and an error thrown in the TypeScript source comes back citing `src/index.ts:LINE`;
 * `dev` serves the app and picks up a saved change.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cli, ROOT } from '../helpers/cli.ts';
import { spawnLineChild, type LineChild } from '../helpers/child-lines.ts';
import { startServe, type ServeProcess } from '../helpers/http-cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const TENANT = 'partner-one';

function tenantConfig(dataDir: string): string {
  return stringify({
    deployment: { data_dir: dataDir, listen: { host: '127.0.0.1', port: 0 }, warm_pool: 1 },
    tenants: [{ id: TENANT, storage: { namespace: 'p1', isolation: 'database' }, identity: { provider: 'iam-internal', realm: 'p1' }, limits: { cpu_ms: 200 } }],
  });
}

/** The 1-based line of the first line containing `text`. */
function lineOf(source: string, text: string): number {
  const i = source.split('\n').findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`no line contains ${text}`);
  return i + 1;
}

function tsc(project: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules/.bin/tsc'), ['--noEmit', '-p', project, '--pretty', 'false'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

function callApp(url: string, token: string, app: string, method: string, args: unknown): Promise<Response> {
  return fetch(`${url}/v1/tenants/${TENANT}/apps/${app}/calls/${method}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
}

async function bounded<T>(what: string, p: Promise<T>, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

describe('isohost init, build, deploy', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let project: string;
  let cfg: string;
  let serve: ServeProcess;

  beforeAll(async () => {
    tmp = await tempDir('isohost-partner-');
    project = join(tmp.path, 'quotes');
    cfg = join(tmp.path, 'isohost.yaml');
    await writeFile(cfg, tenantConfig(join(tmp.path, 'data')));
    serve = await startServe(['--config', cfg]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
    await tmp.dispose();
  });

  it('should make a starter that type-checks against fc.d.ts without skipLibCheck', async () => {
    const r = await cli(['init', project, '--tenant', TENANT]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ app: 'quotes', tenant: TENANT });
    const tsconfig = JSON.parse(await readFile(join(project, 'tsconfig.json'), 'utf8'));
    expect(tsconfig.compilerOptions.skipLibCheck).toBeUndefined();
    expect(tsconfig.compilerOptions.lib).toEqual(['es2023']);
    expect(await readFile(join(project, 'types/fc.d.ts'), 'utf8')).toBe(await readFile(join(ROOT, 'runtime-api/fc.d.ts'), 'utf8'));
    const pkg = JSON.parse(await readFile(join(project, 'package.json'), 'utf8'));
    expect(pkg.scripts.build).toBe('isohost build src/index.ts --out dist/app.js');
    expect(Object.keys(pkg.scripts)).toEqual(expect.arrayContaining(['build', 'dev', 'deploy', 'typecheck']));
    const checked = await tsc(project);
    expect(checked.out).toBe('');
    expect(checked.code).toBe(0);
  }, 60_000);

  it('should refuse a non-empty directory with a usage error', async () => {
    const r = await cli(['init', project]);
    expect(r.code).toBe(2);
    expect(r.lastError?.error?.code).toBe('invalid_request');
    expect(r.lastError?.error?.message).toContain('not empty');
  });

  it('should build one ESM bundle with an inline source map and print out, bytes and sha256', async () => {
    const r = await cli(['build', 'src/index.ts', '--out', 'dist/app.js'], { cwd: project });
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    const bytes = await readFile(join(project, 'dist/app.js'));
    expect(printed).toEqual({ out: 'dist/app.js', bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    const text = bytes.toString('utf8');
    expect(text).toMatch(/^export \{/m);
    expect(text).not.toMatch(/^import /m);
    const map = JSON.parse(Buffer.from(/sourceMappingURL=data:application\/json;base64,(\S+)\s*$/.exec(text)![1]!, 'base64').toString());
    expect(map.sources).toEqual(['src/index.ts']);
  });

  it('should fail a syntax error with a coded error naming src file and line', async () => {
    const broken = join(tmp.path, 'broken');
    expect((await cli(['init', broken])).code).toBe(0);
    await writeFile(join(broken, 'src/index.ts'), 'export function ok() {\n  return 1;\n}\nexport function bad( {\n');
    const r = await cli(['build', 'src/index.ts'], { cwd: broken });
    expect(r.code).toBe(1);
    expect(r.lastError?.error?.code).toBe('invalid_request');
    expect(r.lastError?.error?.message).toMatch(/src\/index\.ts:5:\d+: /);
  });

  it('should deploy through the HTTP API, serve calls, and cite src/index.ts:LINE for a thrown error', async () => {
    const tok = await cli(['token', '--config', cfg, '--tenant', TENANT, '--sub', 'alice', '--scope', 'apps:call apps:deploy']);
    expect(tok.code, tok.stderr).toBe(0);
    const token = tok.stdout.trim();
    const r = await cli(['deploy', join(project, 'dist/app.js'), '--tenant', TENANT, '--app', 'quotes', '--server', serve.address], { env: { ISOHOST_TOKEN: token } });
    expect(r.code, r.stderr).toBe(0);
    const deployed = JSON.parse(r.stdout);
    const sha256 = createHash('sha256').update(await readFile(join(project, 'dist/app.js'))).digest('hex');
    expect(deployed).toMatchObject({ app: 'quotes', version: sha256.slice(0, 16), sha256, state: 'approved' });

    const hello = await callApp(serve.address, token, 'quotes', 'hello', {});
    expect(await hello.json()).toEqual({ result: { message: 'hello, alice', version: deployed.version } });
    const added = await callApp(serve.address, token, 'quotes', 'addNote', { text: 'first' });
    expect(added.status).toBe(200);
    const listed = (await (await callApp(serve.address, token, 'quotes', 'listNotes', {})).json()) as { result: unknown };
    expect(listed.result).toEqual([expect.objectContaining({ text: 'first' })]);

    const failed = await callApp(serve.address, token, 'quotes', 'addNote', {});
    expect(failed.status).toBe(422);
    const source = await readFile(join(project, 'src/index.ts'), 'utf8');
    const line = lineOf(source, "throw new TypeError('text must be a non-empty string')");
    expect(((await failed.json()) as { error: unknown }).error).toEqual({ code: 'miniapp_error', message: `text must be a non-empty string (src/index.ts:${line})` });
  }, 60_000);

  it('should refuse a deploy without ISOHOST_TOKEN (exit 2) and pass on the server error of a token without apps:deploy (exit 1)', async () => {
    const bundle = join(project, 'dist/app.js');
    const missing = await cli(['deploy', bundle, '--tenant', TENANT, '--server', serve.address], { env: { ISOHOST_TOKEN: '' } });
    expect(missing.code).toBe(2);
    expect(missing.lastError?.error?.message).toContain('ISOHOST_TOKEN');
    const tok = await cli(['token', '--config', cfg, '--tenant', TENANT, '--sub', 'alice', '--scope', 'apps:call']);
    const weak = await cli(['deploy', bundle, '--tenant', TENANT, '--server', serve.address], { env: { ISOHOST_TOKEN: tok.stdout.trim() } });
    expect(weak.code).toBe(1);
    expect(weak.lastError?.error?.code).toBe('forbidden');
    const nobody = await cli(['deploy', bundle, '--tenant', TENANT, '--server', 'http://127.0.0.1:1'], { env: { ISOHOST_TOKEN: tok.stdout.trim() } });
    expect(nobody.code).toBe(1);
    expect(nobody.lastError?.error?.code).toBe('unavailable');
  }, 60_000);
});

describe('isohost dev', () => {
  it('should end with a coded error naming --port when the port is taken', async () => {
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    const port = (held.address() as { port: number }).port;
    const dir = await tempDir('isohost-dev-port-');
    try {
      expect((await cli(['init', join(dir.path, 'p')])).code).toBe(0);
      const r = await cli(['dev', join(dir.path, 'p/src/index.ts'), '--tenant', 'business-unit-a', '--port', String(port)], { timeoutMs: 60_000 });
      expect(r.code).toBe(1);
      expect(r.lastError?.error?.code).toBe('unavailable');
      expect(r.lastError?.error?.message).toContain(`127.0.0.1:${port}`);
      expect(r.lastError?.error?.message).toContain('--port');
    } finally {
      held.close();
      await dir.dispose();
    }
  }, 90_000);

  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let dev: LineChild | undefined;
  beforeAll(async () => {
    tmp = await tempDir('isohost-dev-');
  });
  afterAll(async () => {
    if (dev !== undefined && dev.child.exitCode === null) {
      dev.child.kill('SIGTERM');
      await dev.exited;
    }
    await tmp.dispose();
  });

  it('should serve the app and answer with the new code after a save, keeping the last good version through a broken one', async () => {
    const project = join(tmp.path, 'greeter');
    const cfg = join(tmp.path, 'isohost.yaml');
    await writeFile(cfg, tenantConfig(join(tmp.path, 'unused-data')));
    expect((await cli(['init', project, '--tenant', TENANT])).code).toBe(0);
    const src = join(project, 'src/index.ts');
    dev = spawnLineChild('isohost dev', BIN, ['dev', src, '--tenant', TENANT, '--app', 'greeter', '--port', '0', '--config', cfg]);
    const events = () => dev!.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
    await bounded('dev ready', dev.until(() => events().some((e) => e.event === 'ready')));
    const ready = events().find((e) => e.event === 'ready')!;
    expect(ready.data_dir).toBe(join(project, '.isohost-dev'));

    const first = (await (await callApp(ready.url, ready.token, 'greeter', 'hello', {})).json()) as { result: Record<string, unknown> };
    expect(first.result).toEqual({ message: 'hello, dev', version: ready.version });

    const original = await readFile(src, 'utf8');
    await writeFile(src, original.replace('hello, ${', 'bonjour, ${'));
    await bounded('reload', dev.until(() => events().some((e) => e.event === 'reloaded')));
    const reloaded = events().find((e) => e.event === 'reloaded')!;
    expect(reloaded.version).not.toBe(ready.version);
    const second = (await (await callApp(ready.url, ready.token, 'greeter', 'hello', {})).json()) as { result: Record<string, unknown> };
    expect(second.result).toEqual({ message: 'bonjour, dev', version: reloaded.version });

    await writeFile(src, original + '\nexport function broken( {\n');
    await bounded('failed build', dev.until(() => events().some((e) => e.event === 'failed')));
    expect(events().find((e) => e.event === 'failed')!.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('src/index.ts:') });
    const third = (await (await callApp(ready.url, ready.token, 'greeter', 'hello', {})).json()) as { result: Record<string, unknown> };
    expect(third.result.version).toBe(reloaded.version);

    dev.child.kill('SIGTERM');
    await bounded('dev exit', dev.exited);
    expect(dev.child.exitCode).toBe(0);
  }, 120_000);
});
