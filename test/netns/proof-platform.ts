/**
 * The parts of the netns proof that run inside the namespaces: the upstream server, the
 * real `isohost serve` and `isohost token` processes under strace, and the caller. The
 * test talks to isohost only through its CLI and HTTP API (its public contract), so the
 * proof holds for whatever is behind them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { childrenOf } from '../helpers/proc.ts';
import { lineChild, type LineChild } from './line-child.ts';
import type { ProofNetwork } from './proof-network.ts';

const BIN = fileURLToPath(new URL('../../bin/isohost.js', import.meta.url));
const UPSTREAM_SCRIPT = fileURLToPath(new URL('./upstream-server.ts', import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL('./ns-client.ts', import.meta.url));
const NODE = process.execPath;

/**
 * Every syscall that names where a socket goes: connect() for streams and connected
 * datagrams, and the send calls that take a destination (an unconnected UDP socket, as a
 * resolver could use). `--seccomp-bpf` stops the tracee only on these.
 */
const TRACE_ARGS = ['-f', '--seccomp-bpf', '-qq', '-e', 'trace=connect,sendto,sendmsg,sendmmsg', '-e', 'signal=none', '-s', '256'];

export const STARTUP_TIMEOUT_MS = 25_000;
export const REQUEST_TIMEOUT_MS = 15_000;

export interface Upstream {
  readonly proc: LineChild;
  readonly port: number;
  /** `{ request: n, … }` events so far. */
  requests(): UpstreamRequest[];
  /** `{ connection: n, … }` events so far. */
  connections(): { connection: number; remote: string }[];
}

export interface UpstreamRequest {
  request: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  remote: string;
  nonce: string;
}

export async function startUpstream(net: ProofNetwork): Promise<Upstream> {
  const proc = lineChild('upstream server', net.spawnIn(net.upstream, NODE, [UPSTREAM_SCRIPT, net.upstreamIp], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const port = await proc.waitFor('listening line', (l) => (isObject(l) && typeof l.listening === 'number' ? l.listening : undefined), STARTUP_TIMEOUT_MS);
  const events = (key: string) => proc.lines.filter((l): l is Record<string, unknown> => isObject(l) && key in l);
  return {
    proc,
    port,
    requests: () => events('request') as unknown as UpstreamRequest[],
    connections: () => events('connection') as unknown as { connection: number; remote: string }[],
  };
}

/**
 * CPU and wall limits well above the default's: strace stops every traced syscall and the
 * machine may be shared, and a limit breach is not what this test is about.
 */
const PROOF_LIMITS = { cpu_ms: 2_000, wall_ms: 10_000 };

/** The proof's config: two tenants shaped like the built-in default, samples on. */
export function proofConfig(options: { apiPort: number; upstream: string }) {
  return {
    deployment: {
      mode: 'on-premise',
      data_residency: 'netns-proof',
      control_plane: 'self-managed',
      egress: 'deny-by-default',
      data_dir: './data',
      listen: { host: '127.0.0.1', port: options.apiPort },
      egress_proxy: { host: '127.0.0.1', port: 0 },
      samples: true,
      operator_realm: 'ops',
    },
    tenants: [
      {
        id: 'business-unit-a',
        storage: { namespace: 'bu-a', isolation: 'schema' },
        identity: { provider: 'iam-internal', realm: 'bu-a' },
        network: { default: 'deny', allow: [] },
        limits: PROOF_LIMITS,
        // New versions wait for an operator: the proof walks the review routes too.
        review: 'required',
      },
      {
        id: 'partner-acme',
        storage: { namespace: 'acme', isolation: 'database' },
        identity: { provider: 'iam-internal', realm: 'acme' },
        // The default's hostname rules stay: configured names must cost no DNS lookup.
        // A private address is reachable only through an IP rule, so the upstream gets one.
        network: { default: 'deny', allow: ['api.acme-partner.com', '*.cdn.acme.example:443', options.upstream] },
        limits: { ...PROOF_LIMITS, memory_mb: 32, storage_mb: 50, instances: 100 },
        compute: { isolation: 'process' },
      },
    ],
  };
}

export async function writeConfig(dir: string, config: unknown): Promise<string> {
  const path = join(dir, 'isohost.yaml');
  await writeFile(path, stringify(config));
  return path;
}

/** `pid` and all its descendants, collected before anything is killed (an orphan loses its parent link). */
function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i]!));
  return all;
}

/**
 * SIGKILLs `pid` and every process below it: strace, isohost, its sandbox processes (which
 * live in network namespaces of their own, out of `ip netns pids`' sight) and esbuild.
 * Never throws.
 */
export function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const p of processTree(pid)) signal(p, 'SIGKILL');
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

export interface TracedServe {
  /** strace, which runs `node bin/isohost.js serve` as its child and exits with its status. */
  readonly proc: LineChild;
  /** The isohost process itself (strace's child). */
  readonly pid: number;
}

/** Starts `isohost serve` inside the box under strace, writing the trace to `traceFile`. */
export async function startTracedServe(net: ProofNetwork, options: { config: string; data: string; traceFile: string }): Promise<TracedServe> {
  const child = net.spawnIn(net.box, 'strace', [...TRACE_ARGS, '-o', options.traceFile, NODE, BIN, 'serve', '--config', options.config, '--data', options.data], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ISOHOST_LOG_LEVEL: 'info' },
  });
  const proc = lineChild('isohost serve (under strace)', child);
  // `ip netns exec` execs strace in place, so child.pid is strace; isohost is the child that
  // runs `node BIN` (strace first forks short-lived copies of itself, whose command line
  // also holds BIN, to probe for seccomp).
  const pid = await new Promise<number>((resolve, reject) => {
    const started = Date.now();
    const look = () => {
      const kids = child.pid === undefined ? [] : childrenOf(child.pid).filter((kid) => commandLine(kid)[1] === BIN);
      if (kids.length === 1) return resolve(kids[0]!);
      if (proc.exitStatus() !== undefined) return reject(new Error(`strace exited (${proc.exitStatus()}): ${proc.stderr().slice(-2000)}`));
      if (Date.now() - started > STARTUP_TIMEOUT_MS) return reject(new Error('isohost serve did not start under strace'));
      setTimeout(look, 20);
    };
    look();
  });
  return { proc, pid };
}

/** Runs one `isohost …` command inside the box under strace, to completion (bounded). */
export async function runTracedCli(net: ProofNetwork, args: string[], traceFile: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const proc = lineChild(
    `isohost ${args[0]} (under strace)`,
    net.spawnIn(net.box, 'strace', [...TRACE_ARGS, '-o', traceFile, NODE, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ISOHOST_LOG_LEVEL: 'info' } }),
  );
  try {
    const code = await proc.waitExit(STARTUP_TIMEOUT_MS);
    return { code, stdout: proc.stdout(), stderr: proc.stderr() };
  } finally {
    if (proc.exitStatus() === undefined) killTree(proc.child.pid);
  }
}

/** Runs `isohost token …` inside the box under strace; returns the JWT it printed. */
export async function mintTracedToken(
  net: ProofNetwork,
  options: { config: string; data: string; traceFile: string; tenant?: string; realm?: string; sub: string; scope: string },
): Promise<string> {
  // A tenant's realm, or a realm by name (the operator realm).
  const who = options.realm !== undefined ? ['--realm', options.realm] : ['--tenant', options.tenant!];
  const args = ['token', '--config', options.config, '--data', options.data, ...who, '--sub', options.sub, '--scope', options.scope];
  const run = await runTracedCli(net, args, options.traceFile);
  if (run.code !== 0) throw new Error(`isohost token exited ${run.code}: ${run.stderr.slice(-2000)}`);
  const token = run.stdout.trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`isohost token printed no JWT: ${JSON.stringify(token.slice(0, 200))}`);
  return token;
}

export interface BoxResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RequestOptions {
  token?: string;
  /** Sent as application/json. */
  json?: unknown;
  /** Sent as application/javascript (a bundle). */
  javascript?: string;
}

export interface BoxClient {
  readonly proc: LineChild;
  /** One HTTP request made from inside the box to `base` + `path`. */
  request(method: string, path: string, options?: RequestOptions): Promise<BoxResponse>;
  close(): void;
}

/** Starts the caller inside the box (see ns-client.ts). */
export function startBoxClient(net: ProofNetwork, base: string): BoxClient {
  const proc = lineChild('netns client', net.spawnIn(net.box, NODE, [CLIENT_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let next = 0;
  return {
    proc,
    async request(method, path, options = {}) {
      const id = ++next;
      const headers: Record<string, string> = {};
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      let body: string | undefined;
      if (options.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(options.json);
      } else if (options.javascript !== undefined) {
        headers['content-type'] = 'application/javascript';
        body = options.javascript;
      }
      proc.child.stdin!.write(`${JSON.stringify({ id, method, url: base + path, headers, body, timeoutMs: REQUEST_TIMEOUT_MS })}\n`);
      const answer = await proc.waitFor(`answer to ${method} ${path}`, (l) => (isObject(l) && l.id === id ? l : undefined), REQUEST_TIMEOUT_MS + 2_000);
      if (typeof answer.error === 'string') throw new Error(`${method} ${path}: ${answer.error}`);
      return answer as unknown as BoxResponse;
    },
    close: () => proc.child.stdin?.end(),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sends `signal` to `pid` if it is still there. Never throws. */
export function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * What the kernel says about a process that does not exit (its state, pending, blocked
 * and caught signals, and each thread's state), for a failure message.
 */
export function processState(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(State|SigPnd|ShdPnd|SigBlk|SigCgt|TracerPid):/.test(l));
    const threads = readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return `${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))} ${stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)}`;
    });
    return [...status, `threads: ${threads.join(', ')}`].join('\n');
  } catch (err) {
    return `no state for pid ${pid}: ${String(err)}`;
  }
}

/** The processes `tracer` (strace) still traces, with their command lines: what keeps it from exiting. */
export function tracedBy(tracer: number | undefined): string {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (!new RegExp(`^TracerPid:\\s+${tracer}$`, 'm').test(status)) continue;
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 300);
      const ppid = /^PPid:\s+(\d+)/m.exec(status)?.[1];
      out.push(`${entry} (ppid ${ppid}) ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return `processes still traced by ${tracer}: ${out.length === 0 ? 'none' : `\n  ${out.join('\n  ')}`}`;
}
