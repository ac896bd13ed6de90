/**
 * `npm run pack:offline` (scripts/pack-offline.sh): one tarball with the production
 * dependencies, the prebuilt prelude and the SBOM. It is unpacked and run inside a network
 * namespace that has only loopback (iproute2's `ip netns`), with the npm registry pointed
 * at a closed loopback port, an empty npm cache and HOME, and the installation mounted
 * read-only: install.sh, `npm ls`, `isohost config check` and two `isohost run` calls
 * must all succeed there. Skips, saying why, where namespaces cannot be made.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { parseDockerfile } from './dockerfile.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 180_000 });
const run = promisify(execFile);
/** The version the tarball is named and reports after (package.json). */
const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

async function cannotMakeNamespaces(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (ip netns needs CAP_SYS_ADMIN)';
  for (const tool of ['ip', 'unshare', 'tar']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} not found (apt-get install -y iproute2 util-linux tar)`;
    }
  }
  return undefined;
}
const skipReason = await cannotMakeNamespaces();
if (skipReason !== undefined) console.warn(`skipping the offline install in a network namespace: ${skipReason}`);

const NS = `isohost-offline-${process.pid}`;
/** The image's USER (deploy/docker/Dockerfile). */
const SERVICE_UID = 10001;
let work: Awaited<ReturnType<typeof tempDir>>;
let tarball = '';
let app = '';
let nsMade = false;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` in the namespace with `app` bind-mounted read-only in a private mount
 * namespace, with no npm cache, an empty HOME and the registry on a closed loopback port.
 */
function offline(argv: string[], extraEnv: Record<string, string> = {}, onSpawn?: (child: ChildProcess) => void): Promise<Result> {
  const env = {
    ...extraEnv,
    PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: join(work.path, 'home'),
    npm_config_cache: join(work.path, 'npm-cache'),
    npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_update_notifier: 'false',
  };
  const readOnly = 'd=$1; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && cd "$d" && exec "$@"';
  return new Promise((resolve, reject) => {
    // ip netns exec, unshare and sh all exec: the child's pid is the command's own
    const child = spawn('ip', ['netns', 'exec', NS, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', readOnly, 'sh', app, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(skipReason !== undefined)('npm run pack:offline', () => {
  beforeAll(async () => {
    work = await tempDir('isohost-offline-');
    const out = join(work.path, 'dist');
    const packed = await run('bash', [join(ROOT, 'scripts/pack-offline.sh'), '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    tarball = packed.stdout.trim().split('\n').at(-1)!;
    await mkdir(join(work.path, 'opt'));
    await mkdir(join(work.path, 'home'));
    await mkdir(join(work.path, 'npm-cache'));
    await mkdir(join(work.path, 'data'));
    await run('tar', ['-xzf', tarball, '-C', join(work.path, 'opt')]);
    app = join(work.path, 'opt', 'isohost');
    await run('ip', ['netns', 'add', NS]);
    nsMade = true;
    await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  });
  afterAll(async () => {
    if (nsMade) await run('ip', ['netns', 'del', NS]).catch(() => undefined);
    await work?.dispose();
  });

  it('should make one tarball for this platform with production dependencies only', async () => {
    expect(await readdir(dirname(tarball))).toEqual([`isohost-${VERSION}-${process.platform}-${process.arch}.tar.gz`]);
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    const shipped = JSON.parse(await readFile(join(app, 'package.json'), 'utf8'));
    expect(shipped.devDependencies).toBeUndefined();
    expect(shipped.dependencies).toEqual(pkg.dependencies);
    const modules = await readdir(join(app, 'node_modules'));
    for (const dep of Object.keys(pkg.dependencies)) expect(modules, dep).toContain(dep.split('/')[0]);
    for (const dev of Object.keys(pkg.devDependencies)) expect(modules, dev).not.toContain(dev.split('/')[0]);
    expect((await readdir(join(app, 'node_modules/.cache/isohost'))).some((f) => /^prelude-[0-9a-f]+\.js$/.test(f))).toBe(true);
    // packed from a commit of this repository (HEAD may have moved on since)
    const revision = (await readFile(join(app, 'REVISION'), 'utf8')).trim();
    expect(revision).toMatch(/^[0-9a-f]{40}$/);
    await expect(run('git', ['-C', ROOT, 'cat-file', '-e', `${revision}^{commit}`])).resolves.toBeDefined();
    for (const f of ['install.sh', 'bin/isohost.js', 'deploy/systemd/isohost.service', 'deploy/isohost.example.yaml', 'isohost.cdx.json']) {
      await expect(readFile(join(app, f)), f).resolves.toBeDefined();
    }
  });

  it('should carry a CycloneDX SBOM of exactly the shipped tree, dev dependencies left out', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    const sbom = JSON.parse(await readFile(join(app, 'isohost.cdx.json'), 'utf8'));
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.metadata.component).toMatchObject({ name: 'isohost', version: pkg.version });
    const names = new Set<string>(sbom.components.map((c: { name: string }) => c.name));
    // esbuild and yaml are the ones `npm sbom --omit dev` on the working tree loses (npm/cli#7909)
    for (const dep of Object.keys(pkg.dependencies)) expect(names.has(dep), dep).toBe(true);
    for (const dev of ['vitest', 'typescript', 'kubernetes-models', 'vite', '@types/node']) expect(names.has(dev), dev).toBe(false);
  });

  it('should copy at least what the Dockerfile copies', async () => {
    const script = await readFile(join(ROOT, 'scripts/pack-offline.sh'), 'utf8');
    const listed = /^paths="([^"]+)"$/m.exec(script)![1]!.trim().split(/\s+/);
    const { stages } = parseDockerfile(await readFile(join(ROOT, 'deploy/docker/Dockerfile'), 'utf8'));
    const copied = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((p) => p.replace(/\/$/, ''));
    for (const p of copied) expect(listed.some((l) => p === l || p.startsWith(`${l}/`)), p).toBe(true);
  });

  it('should install and run in a namespace with only loopback, no registry and a read-only install', async () => {
    const links = await run('ip', ['-n', NS, '-o', 'link', 'show']);
    expect(links.stdout.trim().split('\n').map((l) => l.split(':')[1]!.trim())).toEqual(['lo']);
    expect((await run('ip', ['-n', NS, 'route', 'show'])).stdout.trim()).toBe('');

    const installed = await offline(['./install.sh']);
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain(`isohost ${VERSION} ready in `);

    // the dependency tree is complete as unpacked; npm would otherwise try the dead registry
    const ls = await offline(['npm', 'ls', '--all', '--omit=dev']);
    expect(ls.code, ls.stdout + ls.stderr).toBe(0);

    const check = await offline(['node', 'bin/isohost.js', 'config', 'check', 'deploy/isohost.example.yaml']);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true });

    const data = join(work.path, 'data');
    const set = await offline(['node', 'bin/isohost.js', 'run', 'sample-miniapps/profile/profile.js', '--tenant', 'business-unit-a', '--sub', 'alice', '--call', 'setProfile', '--args', '{"name":"Alice"}', '--data', data]);
    expect(set.code, set.stderr).toBe(0);
    const get = await offline(['node', 'bin/isohost.js', 'run', 'sample-miniapps/profile/profile.js', '--tenant', 'business-unit-a', '--sub', 'alice', '--call', 'getProfile', '--data', data]);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ name: 'Alice' });
  });

  it('should serve as uid 10001 from the read-only install, writing only data_dir, pass the image healthcheck and stop on SIGTERM', { timeout: 90_000 }, async () => {
    // The example config with its own data_dir and, since the namespace is private, its
    // fixed ports; /healthz on the API listener, as the Dockerfile documents for a config
    // without ops_listen.
    const config = parse(await readFile(join(app, 'deploy/isohost.example.yaml'), 'utf8'));
    config.deployment.data_dir = join(work.path, 'serve-data');
    config.deployment.listen = { host: '127.0.0.1', port: 8080 };
    delete config.deployment.ops_listen;
    const file = join(work.path, 'serve.yaml');
    await writeFile(file, stringify(config), { mode: 0o644 });
    const tmp = join(work.path, 'tmp');
    await mkdir(tmp);
    // As in the image: the service uid (no passwd entry) owns data_dir and TMPDIR, and
    // nothing else; the installation stays root's.
    await chmod(work.path, 0o755);
    for (const dir of [config.deployment.data_dir, tmp]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chown(dir, SERVICE_UID, SERVICE_UID);
    }

    let server: ChildProcess | undefined;
    let log = '';
    let started: () => void = () => undefined;
    const serving = new Promise<void>((resolve) => (started = resolve));
    const asService = ['setpriv', `--reuid=${SERVICE_UID}`, `--regid=${SERVICE_UID}`, '--clear-groups', '--'];
    const stopped = offline([...asService, 'node', 'bin/isohost.js', 'serve', '--config', file], { TMPDIR: tmp }, (child) => {
      server = child;
      child.stderr!.on('data', (d) => {
        log += d;
        if (log.includes('"isohost serving"')) started();
      });
    });
    void stopped.then(() => started());
    try {
      await serving;
      expect(log, 'serve did not start').toContain('"isohost serving"');
      const health = await offline([...asService, 'node', 'deploy/docker/healthcheck.mjs'], { ISOHOST_HEALTHCHECK_URL: 'http://127.0.0.1:8080/healthz' });
      expect(health.code, health.stderr).toBe(0);
      const down = await offline(['node', 'deploy/docker/healthcheck.mjs'], { ISOHOST_HEALTHCHECK_URL: 'http://127.0.0.1:8081/healthz' });
      expect(down.code).toBe(1);
    } finally {
      server?.kill('SIGTERM');
    }
    const end = await stopped;
    expect(end.code, end.stderr).toBe(0);
    // state went to data_dir and nowhere else that is writable
    const written = await readdir(config.deployment.data_dir);
    expect(written.length).toBeGreaterThan(0);
    for (const f of written) expect((await stat(join(config.deployment.data_dir, f))).uid, f).toBe(SERVICE_UID);
    expect(await readdir(join(work.path, 'home'))).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('should have the read-only mount really refuse writes to the installation', async () => {
    const write = await offline(['sh', '-c', 'touch node_modules/.cache/isohost/probe']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
  });
});
