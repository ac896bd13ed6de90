/**
 * The two network namespaces of the netns proof, made with iproute2 (`ip netns`):
 *
 *   box       loopback, plus one end of a veth pair (BOX_IP/30) — isohost runs here
 *   upstream  loopback, plus the other end (UPSTREAM_IP/30) — the allowlisted server
 *
 * The veth pair is created inside the box namespace with its peer placed straight into
 * the upstream one, so nothing is ever added to the host's own namespace; the /30 exists
 * only between the two. The box has no default route: from inside it, the only reachable
 * addresses are its loopback and the upstream's.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';

const STEP_TIMEOUT_MS = 10_000;

function ip(args: string[]): string {
  return execFileSync('ip', args, { timeout: STEP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

function runs(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { timeout: STEP_TIMEOUT_MS, stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/**
 * Why the proof cannot run here, or null when it can: it needs Linux, root, iproute2's
 * `ip`, `strace`, and a kernel/container that lets `ip netns add` succeed.
 */
export function proofUnsupportedReason(): string | null {
  if (process.platform !== 'linux') return `network namespaces are Linux-only (platform ${process.platform})`;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  if (!runs('ip', ['-V'])) return '`ip` (Debian package iproute2) is not installed';
  if (!runs('strace', ['-V'])) return '`strace` (Debian package strace) is not installed';
  const probe = `isohost-probe-${randomBytes(4).toString('hex')}`;
  const made = spawnSync('ip', ['netns', 'add', probe], { timeout: STEP_TIMEOUT_MS, encoding: 'utf8' });
  if (made.error !== undefined || made.status !== 0) return `\`ip netns add\` failed: ${(made.stderr || String(made.error)).trim()}`;
  runs('ip', ['netns', 'del', probe]);
  return null;
}

export interface ProofNetwork {
  /** The namespace isohost runs in. */
  readonly box: string;
  readonly upstream: string;
  readonly boxIp: string;
  readonly upstreamIp: string;
  /** Spawns `command` inside a namespace (`ip netns exec NS …`, which execs in place). */
  spawnIn(ns: string, command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Kills what still runs in both namespaces and deletes them (and with them the veth pair). Never throws. */
  dispose(): void;
}

/** Creates the box and upstream namespaces joined by a veth pair on a random 10.200.x.0/30. */
export function createProofNetwork(): ProofNetwork {
  const tag = randomBytes(3).toString('hex');
  const box = `isohost-proof-${tag}`;
  const upstream = `isohost-upstream-${tag}`;
  const subnet = randomInt(0, 256);
  const boxIp = `10.200.${subnet}.1`;
  const upstreamIp = `10.200.${subnet}.2`;
  // Interface names are at most 15 bytes (IFNAMSIZ).
  const boxEnd = `isop${tag}b`;
  const upstreamEnd = `isop${tag}u`;
  const made: string[] = [];
  const dispose = () => {
    for (const ns of made.reverse()) {
      // Whatever still runs in a namespace would keep it alive after its name is gone.
      for (const pid of pidsIn(ns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      runs('ip', ['netns', 'del', ns]);
    }
    made.length = 0;
  };
  try {
    ip(['netns', 'add', box]);
    made.push(box);
    ip(['netns', 'add', upstream]);
    made.push(upstream);
    ip(['-n', box, 'link', 'set', 'lo', 'up']);
    ip(['-n', upstream, 'link', 'set', 'lo', 'up']);
    ip(['-n', box, 'link', 'add', boxEnd, 'type', 'veth', 'peer', 'name', upstreamEnd, 'netns', upstream]);
    ip(['-n', box, 'addr', 'add', `${boxIp}/30`, 'dev', boxEnd]);
    ip(['-n', upstream, 'addr', 'add', `${upstreamIp}/30`, 'dev', upstreamEnd]);
    ip(['-n', box, 'link', 'set', boxEnd, 'up']);
    ip(['-n', upstream, 'link', 'set', upstreamEnd, 'up']);
  } catch (err) {
    dispose();
    throw err;
  }
  return {
    box,
    upstream,
    boxIp,
    upstreamIp,
    spawnIn: (ns, command, args, options = {}) => spawn('ip', ['netns', 'exec', ns, command, ...args], options),
    dispose,
  };
}

/** The processes in a namespace (`ip netns pids`); empty when it cannot be read. */
function pidsIn(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { timeout: STEP_TIMEOUT_MS, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(/\s+/).filter((t) => /^\d+$/.test(t)).map(Number) : [];
}

/** The routes of a namespace, as `ip route` prints them (for a failure message). */
export function routesOf(ns: string): string {
  try {
    return ip(['-n', ns, 'route', 'show']) + ip(['-n', ns, '-6', 'route', 'show']);
  } catch (err) {
    return String(err);
  }
}
