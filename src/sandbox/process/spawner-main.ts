/**
 * Entry of the spawner process (spawner.ts starts one per host). It runs every sandbox
 * process spawn for the host, so the fork() of a spawn copies this small process's memory
 * map, not the host's: a spawn from the host's main thread blocked its event loop 6–16 ms
 * on a 400 MB host (issue 10, the `crash` neighbour).
 *
 * Host-trusted code, run as the host's uid (root when the host is, which `unshare --net`
 * needs); it runs no guest code and reads nothing from the sandbox children but their
 * stderr. Each child gets a socketpair on fd 3; the parent's end is passed to the host
 * with the `spawned` report and closed here, so messages flow host ↔ child directly.
 *
 * Host → spawner: `{t:'spawn', id, file, args}`, `{t:'kill', pid}`.
 * Spawner → host: `{t:'spawned', id, pid}` (+ the channel socket), `{t:'spawn_failed', id}`,
 * `{t:'exit', pid, code, signal, stderr}`.
 * The host gone (IPC disconnect) → every child is killed and the spawner exits.
 *
 * At its start it also primes the sandbox code cache the children start with (see
 * primeCodeCache).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bytes of a child's stderr kept for the host's crash log line. */
const STDERR_KEEP = 4096;
/** A prime that has not finished by then is killed, and children start without the cache. */
const PRIME_TIMEOUT_MS = 60_000;
const SANDBOX_ENTRY = fileURLToPath(new URL('./sandbox-main.ts', import.meta.url));

/**
 * The sandbox code cache: Node's module compile cache (the type-stripped source and V8's
 * code cache of every module a sandbox process loads), primed once by this spawner and
 * handed to every child started after that (NODE_COMPILE_CACHE). A sandbox process
 * starts after every crash of its tenant's code, and without the cache each start strips
 * and compiles its ~40 modules anew: ~500 ms of a core from start to idle after `ready`,
 * ~230 ms with the cache (/proc/<pid>/stat on the 2-core bench box; THREATS F48,
 * `neighbour.p99_ratio.crash`).
 *
 * Trust: the cache holds code every sandbox process runs before and after its privilege
 * drop, so no sandbox may write it. It is made by a process of the host's uid from the
 * product's own files (sandbox-main.ts --prime), in a fresh directory of its own, and
 * then made read-only: directories 0755, files 0444, owned by the host's uid. Node names
 * the cache's subdirectory by the uid a process starts as, and a sandbox process starts
 * as the host's uid (root, when it drops to a uid of its own), so prime and children use
 * the same one. After its drop a sandbox reads the cache and nothing more; Node's
 * attempt to add entries at its exit fails quietly. Where the host does not run as
 * root, sandbox processes share its uid and could change the cache — as they could
 * change anything of the host's (/readyz reports the missing uid protection). Removed
 * when the spawner ends; one a SIGKILLed spawner left behind is removed by the next
 * spawner's start (sweepLeftCaches).
 */
let codeCache: string | undefined;

/** `isohost-sandbox-code-<spawner pid>-<random>`: the pid tells a live spawner's cache from one left behind. */
const CACHE_PREFIX = 'isohost-sandbox-code-';

function primeCodeCache(): void {
  sweepLeftCaches();
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), `${CACHE_PREFIX}${process.pid}-`));
  } catch {
    return; // no temp dir: children start without the cache
  }
  // Best effort, wherever it runs: a failure must not end the spawner (from an event) or its exit.
  const drop = () => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // left for the next spawner's sweep
    }
  };
  process.on('exit', drop);
  // Work done for the sandboxes, at their CPU priority: this spawner's, which it inherits as they do (spawner.ts).
  const prime = spawn(process.execPath, [SANDBOX_ENTRY, '--prime'], { cwd: '/', env: { NODE_COMPILE_CACHE: dir }, stdio: 'ignore', timeout: PRIME_TIMEOUT_MS });
  prime.on('error', drop);
  prime.on('exit', (code) => {
    if (code !== 0) return drop();
    try {
      readOnly(dir);
      codeCache = dir;
    } catch {
      drop();
    }
  });
}

/**
 * Removes the code caches of spawners that are gone without removing theirs (SIGKILLed):
 * ours (owned by this uid) whose spawner pid no longer runs. A pid that runs again, for
 * anything, keeps its directory until a later sweep finds it gone.
 */
function sweepLeftCaches(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = name.startsWith(CACHE_PREFIX) ? Number(/^(\d+)-/.exec(name.slice(CACHE_PREFIX.length))?.[1]) : Number.NaN;
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    const path = join(tmpdir(), name);
    try {
      const st = lstatSync(path);
      if (st.isDirectory() && st.uid === process.getuid!()) rmSync(path, { recursive: true, force: true });
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every directory under `dir` (and itself) 0755, every file 0444. */
function readOnly(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) readOnly(path);
    else chmodSync(path, 0o444);
  }
  chmodSync(dir, 0o755);
}

const children = new Map<number, ChildProcess>();

function send(m: object, handle?: Socket): void {
  if (!process.connected) return;
  try {
    process.send!(m, handle);
  } catch {
    // the host is gone; 'disconnect' ends us
  }
}

function spawnChild(id: number, file: string, args: string[]): void {
  // A clean environment: nothing of the host's (tokens, proxy settings, NODE_OPTIONS) reaches the child.
  // Only Node's own: fd 3 is the child's IPC channel, in advanced serialisation (frame-channel.ts),
  // and NODE_COMPILE_CACHE once the sandbox code cache is primed (see primeCodeCache).
  const env: Record<string, string> = { NODE_CHANNEL_FD: '3', NODE_CHANNEL_SERIALIZATION_MODE: 'advanced' };
  if (codeCache !== undefined) env.NODE_COMPILE_CACHE = codeCache;
  const child = spawn(file, args, { cwd: '/', env, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < STDERR_KEEP) stderr += d.toString('utf8').slice(0, STDERR_KEEP - stderr.length);
  });
  child.on('spawn', () => {
    children.set(child.pid!, child);
    // The child writes nothing on fd 3 before the host's first frame, so this end holds no unread byte.
    send({ t: 'spawned', id, pid: child.pid }, child.stdio[3] as Socket);
  });
  child.on('error', () => {
    if (child.pid === undefined) send({ t: 'spawn_failed', id });
  });
  // Reported once it has exited and its stderr is read to the end. Not 'close': that waits
  // for fd 3 too, whose socket object here never closes once its handle was passed on.
  const stderrDone = new Promise<void>((resolve) => child.stderr!.once('close', resolve));
  child.on('exit', (code, signal) => {
    const pid = child.pid!;
    void stderrDone.then(() => {
      children.delete(pid);
      send({ t: 'exit', pid, code, signal, stderr });
    });
  });
}

process.on('message', (m: { t?: unknown; id?: unknown; file?: unknown; args?: unknown; pid?: unknown }) => {
  if (m.t === 'spawn' && typeof m.id === 'number' && typeof m.file === 'string' && Array.isArray(m.args) && m.args.every((a) => typeof a === 'string')) {
    return spawnChild(m.id, m.file, m.args as string[]);
  }
  // Only a child of ours that is not reaped yet: its pid cannot have been reused.
  if (m.t === 'kill' && typeof m.pid === 'number') children.get(m.pid)?.kill('SIGKILL');
});

process.on('disconnect', () => {
  for (const c of children.values()) c.kill('SIGKILL');
  process.exit(0);
});

primeCodeCache();
