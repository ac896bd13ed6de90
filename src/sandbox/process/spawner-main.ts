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
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/** Bytes of a child's stderr kept for the host's crash log line. */
const STDERR_KEEP = 4096;

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
  // Only Node's own: fd 3 is the child's IPC channel, in advanced serialisation (frame-channel.ts).
  const env = { NODE_CHANNEL_FD: '3', NODE_CHANNEL_SERIALIZATION_MODE: 'advanced' };
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
