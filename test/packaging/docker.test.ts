/**
 * deploy/docker/: no Docker engine runs on the test machines, so the Dockerfile is checked
 * statically (base image, non-root numeric USER, VOLUME = the example config's data_dir,
 * production-only npm, exec-form ENTRYPOINT/CMD, every COPY source present and let
 * through by .dockerignore), the example config with the real CLI, and the HEALTHCHECK
 * script against a real loopback server.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cli, ROOT } from '../helpers/cli.ts';
import { execForm, parseDockerfile, type Instruction } from './dockerfile.ts';

const DOCKERFILE = readFileSync(join(ROOT, 'deploy/docker/Dockerfile'), 'utf8');
const { stages } = parseDockerfile(DOCKERFILE);
const final = stages.at(-1)!.instructions;
const example = parse(readFileSync(join(ROOT, 'deploy/isohost.example.yaml'), 'utf8'));

function all(op: string, list: Instruction[] = final): Instruction[] {
  return list.filter((i) => i.op === op);
}
function one(op: string): Instruction {
  const found = all(op);
  expect(found, `exactly one ${op} in the final stage`).toHaveLength(1);
  return found[0]!;
}
function env(): Map<string, string> {
  const out = new Map<string, string>();
  for (const i of all('ENV')) for (const m of i.args.matchAll(/(\w+)=(\S+)/g)) out.set(m[1]!, m[2]!);
  return out;
}

/** .dockerignore as Docker applies it: patterns in order, the last match wins, `!` re-includes. */
function ignored(path: string): boolean {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  let out = false;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    const pat = (negate ? p.slice(1) : p).replace(/\/$/, '');
    const hit = pat === '*' || path === pat || path.startsWith(`${pat}/`);
    if (hit) out = !negate;
  }
  return out;
}

describe('deploy/docker/Dockerfile', () => {
  it('should build every stage on node:24-bookworm-slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(1);
    for (const s of stages) expect(s.from.split(/\s+/)[0]).toBe('node:24-bookworm-slim');
  });

  it('should run as a numeric non-root user, set after every RUN', () => {
    const user = one('USER').args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(final.findLastIndex((i) => i.op === 'RUN')).toBeLessThan(final.findIndex((i) => i.op === 'USER'));
  });

  it('should declare the example config data_dir as the only VOLUME, owned by that user', () => {
    const volumes = execForm(one('VOLUME').args);
    expect(volumes).toEqual([example.deployment.data_dir]);
    const uid = one('USER').args.split(':')[0];
    expect(all('RUN').some((r) => r.args.includes(`install -d -o ${uid} -g ${uid} -m 0700 ${example.deployment.data_dir}`))).toBe(true);
  });

  it('should install production dependencies only, exactly from the lockfile', () => {
    const runs = stages.flatMap((s) => all('RUN', s.instructions)).map((r) => r.args);
    const npm = runs.filter((r) => /\bnpm\b/.test(r));
    expect(npm.length).toBeGreaterThan(0);
    for (const r of npm) {
      expect(r).not.toMatch(/\bnpm (install|i|add)\b/);
      if (/\bnpm ci\b/.test(r)) expect(r).toMatch(/--omit=dev\b/);
    }
    expect(npm.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
  });

  it('should keep HOME and TMPDIR on /tmp and NODE_ENV production', () => {
    const e = env();
    expect(e.get('HOME')).toBe('/tmp');
    expect(e.get('TMPDIR')).toBe('/tmp');
    expect(e.get('NODE_ENV')).toBe('production');
    expect(DOCKERFILE).toContain('--read-only --tmpfs /tmp');
  });

  it('should start serve with the copied config through node, in exec form', () => {
    expect(execForm(one('ENTRYPOINT').args)).toEqual(['node', 'bin/isohost.js']);
    expect(execForm(one('CMD').args)).toEqual(['serve', '--config', '/etc/isohost/isohost.yaml']);
    expect(all('COPY').some((c) => c.args === 'deploy/isohost.example.yaml /etc/isohost/isohost.yaml')).toBe(true);
    expect(one('STOPSIGNAL').args).toBe('SIGTERM');
    expect(one('EXPOSE').args.split(/\s+/).map(Number)).toEqual([example.deployment.listen.port, example.deployment.ops_listen.port]);
  });

  it('should health-check /healthz on the ops port with node itself', () => {
    const hc = one('HEALTHCHECK').args;
    const cmd = execForm(hc.slice(hc.indexOf('CMD ') + 4));
    expect(cmd).toEqual(['node', 'deploy/docker/healthcheck.mjs']);
    expect(all('COPY').some((c) => c.args.startsWith('deploy/docker/healthcheck.mjs '))).toBe(true);
    expect(env().get('ISOHOST_HEALTHCHECK_URL')).toBe(`http://127.0.0.1:${example.deployment.ops_listen.port}/healthz`);
    expect(DOCKERFILE).not.toMatch(/\b(curl|wget)\b/);
  });

  it('should copy only sources that exist and that .dockerignore lets through', () => {
    const sources = stages
      .flatMap((s) => all('COPY', s.instructions))
      .filter((c) => !c.args.startsWith('--from='))
      .flatMap((c) => c.args.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      const path = src.replace(/\/$/, '');
      expect(existsSync(join(ROOT, path)), path).toBe(true);
      expect(ignored(path), `${path} excluded by .dockerignore`).toBe(false);
    }
    // what the code reads at run time through import.meta.url (prelude, samples, console)
    for (const needed of ['bin', 'src', 'runtime-api', 'sample-miniapps', 'console', 'package.json', 'package-lock.json']) {
      expect(sources.map((s) => s.replace(/\/$/, '')), needed).toContain(needed);
    }
    for (const kept of ['test', 'data', 'node_modules', '.git', 'bench']) expect(ignored(kept), kept).toBe(true);
  });
});

describe('deploy/isohost.example.yaml', () => {
  it('should pass `isohost config check` and describe a container deployment', async () => {
    const r = await cli(['config', 'check', 'deploy/isohost.example.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, tenants: ['business-unit-a', 'partner-acme'] });
    expect(example.deployment).toMatchObject({
      data_dir: '/var/lib/isohost',
      listen: { host: '0.0.0.0', port: 8080 },
      ops_listen: { port: 9090 },
      egress_proxy: { host: '127.0.0.1', port: 0 },
      samples: false,
    });
  });
});

describe('deploy/docker/healthcheck.mjs', () => {
  let server: Server;
  let status = 200;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function check(url: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(ROOT, 'deploy/docker/healthcheck.mjs')], { env: { ...process.env, ISOHOST_HEALTHCHECK_URL: url }, stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', resolve);
    });
  }

  it('should exit 0 on a 2xx /healthz and 1 on a 503, a 404 or a closed port', async () => {
    status = 200;
    expect(await check(`http://127.0.0.1:${port}/healthz`)).toBe(0);
    status = 503;
    expect(await check(`http://127.0.0.1:${port}/healthz`)).toBe(1);
    expect(await check(`http://127.0.0.1:${port}/nope`)).toBe(1);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await check(`http://127.0.0.1:${closedPort}/healthz`)).toBe(1);
  });
});
