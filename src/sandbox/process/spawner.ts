/**
 * Host side of the spawner process (spawner-main.ts): every sandbox process is spawned
 * there, so no fork() of the host's (large) memory map blocks the host's event loop.
 *
 * One spawner per host process, started with the first sandbox spawn. It knows which
 * pids are its un-reaped children, so kills go through it (no pid-reuse race) and it
 * reports each exit with the child's stderr. If it dies, every child it started is ended
 * here (their owners close the channels, and the children exit when theirs closes; the
 * tier logs each as a crash with cause `spawner_died`); the next spawn starts a new
 * spawner, a second later if the last one died young.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { IsohostError } from '../../errors.ts';
import { hostCapabilities, SANDBOX_NICE } from './protections.ts';

const ENTRY = fileURLToPath(new URL('./spawner-main.ts', import.meta.url));
/** A spawner that lived less than this before dying makes the next start wait (crash-loop guard). */
const YOUNG_MS = 5000;
const RESTART_DELAY_MS = 1000;

/** How a spawned child ended, as the spawner saw it. */
export interface SpawnedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The first bytes of the child's stderr (untrusted text). */
  stderr: string;
  /** The spawner itself died; the child's fate is unknown (it exits when its channel closes). */
  spawnerDied: boolean;
}

export interface Spawned {
  pid: number;
  /** The host's end of the child's fd-3 socketpair. */
  channel: Socket;
}

interface PendingSpawn {
  onExit(e: SpawnedExit): void;
  resolve(s: Spawned): void;
  reject(e: unknown): void;
}

class SpawnerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, PendingSpawn>();
  readonly #running = new Map<number, (e: SpawnedExit) => void>();
  /** Children killed whose exit report has not come yet: someone may await it (a closing CLI). */
  readonly #killing = new Set<number>();
  readonly #startedAt = Date.now();
  #nextId = 1;
  #alive = true;
  readonly #onDeath: (livedMs: number) => void;

  constructor(onDeath: (livedMs: number) => void) {
    this.#onDeath = onDeath;
    // At the sandboxes' CPU priority (protections.ts SANDBOX_NICE), every thread of it, and
    // its children inherit it: what it does is their work — the fork, the unshare/prlimit
    // chain before Node, reading their stderr. Measured with the spawner at the host's
    // priority instead, alternated (a process tenant's sandbox SIGKILLed every 450 ms, and
    // the fatal-OOM crash attack): a shared tenant's p99 3.6–4.6 vs 2.5–3.3 ms and 2.8–3.9
    // vs 2.4–3.1 ms (neighbour.p99_ratio.crash).
    const nice = hostCapabilities().nice;
    const [file, args] = nice === undefined ? [process.execPath, [ENTRY]] : [nice, ['-n', String(SANDBOX_NICE), process.execPath, ENTRY]];
    this.#child = spawn(file, args, { cwd: '/', env: {}, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.#child.on('message', (m, handle) => this.#onMessage(m as Record<string, unknown>, handle as Socket | undefined));
    this.#child.on('error', () => {
      if (this.#child.pid === undefined) this.#died();
    });
    this.#child.on('exit', () => this.#died());
    this.#child.on('disconnect', () => this.#died());
    // The spawner never keeps the host alive; the host exiting closes the IPC and ends it.
    this.#child.unref();
    this.#unrefChannel();
  }

  get alive(): boolean {
    return this.#alive;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  spawn(file: string, args: string[], onExit: (e: SpawnedExit) => void): Promise<Spawned> {
    if (!this.#alive) return Promise.reject(new IsohostError('unavailable', 'the sandbox spawner has ended'));
    const id = this.#nextId++;
    return new Promise<Spawned>((resolve, reject) => {
      this.#pending.set(id, { onExit, resolve, reject });
      this.#refChannel();
      this.#child.send({ t: 'spawn', id, file, args }, (err) => {
        if (err) this.#died();
      });
    });
  }

  kill(pid: number): void {
    if (!this.#alive || !this.#running.has(pid)) return;
    this.#killing.add(pid);
    this.#refChannel();
    this.#child.send({ t: 'kill', pid }, () => {});
  }

  // While a spawn or a kill's exit report is pending the IPC channel keeps the loop alive, else
  // the reply could be lost on exit (a CLI that closes its platform awaits its children's exits).
  #refChannel(): void {
    (this.#child.channel as { ref?: () => void } | null | undefined)?.ref?.();
  }

  #unrefChannel(): void {
    if (this.#pending.size === 0 && this.#killing.size === 0) (this.#child.channel as { unref?: () => void } | null | undefined)?.unref?.();
  }

  #onMessage(m: Record<string, unknown>, handle: Socket | undefined): void {
    if (m.t === 'spawned' || m.t === 'spawn_failed') {
      const p = this.#pending.get(m.id as number);
      if (p === undefined) {
        handle?.destroy();
        return;
      }
      this.#pending.delete(m.id as number);
      this.#unrefChannel();
      if (m.t === 'spawn_failed') return p.reject(new IsohostError('unavailable', 'could not start the sandbox process'));
      const pid = m.pid as number;
      this.#running.set(pid, p.onExit);
      if (handle === undefined) {
        // The child's end was gone before it could be passed: it ended at once; its exit report follows.
        return p.reject(new IsohostError('unavailable', 'the sandbox process ended while starting'));
      }
      return p.resolve({ pid, channel: handle });
    }
    if (m.t === 'exit') {
      const onExit = this.#running.get(m.pid as number);
      if (onExit === undefined) return;
      this.#running.delete(m.pid as number);
      if (this.#killing.delete(m.pid as number)) this.#unrefChannel();
      onExit({ code: m.code as number | null, signal: m.signal as NodeJS.Signals | null, stderr: String(m.stderr ?? ''), spawnerDied: false });
    }
  }

  #died(): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#child.kill('SIGKILL');
    const err = new IsohostError('unavailable', 'the sandbox spawner ended');
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#killing.clear();
    const running = [...this.#running.values()];
    this.#running.clear();
    for (const onExit of running) onExit({ code: null, signal: null, stderr: '', spawnerDied: true });
    this.#onDeath(Date.now() - this.#startedAt);
  }
}

let current: SpawnerProcess | undefined;
/** No new spawner before this time (epoch ms): the last one died young. */
let notBefore = 0;

/**
 * Spawns `file args` from the spawner (started now if none runs; after a short wait if
 * the last one died young). `onExit` is called once, when the child has ended or the
 * spawner died. Rejects `unavailable` if the spawn failed.
 */
export async function spawnSandbox(file: string, args: string[], onExit: (e: SpawnedExit) => void): Promise<Spawned> {
  const wait = notBefore - Date.now();
  if (wait > 0 && (current === undefined || !current.alive)) await new Promise((resolve) => setTimeout(resolve, wait));
  if (current === undefined || !current.alive) {
    const proc: SpawnerProcess = new SpawnerProcess((livedMs) => {
      if (current === proc) current = undefined;
      if (livedMs < YOUNG_MS) notBefore = Date.now() + RESTART_DELAY_MS;
    });
    current = proc;
  }
  return current.spawn(file, args, onExit);
}

/** Asks the spawner to SIGKILL one of its children (nothing if it is no longer one). */
export function killSandbox(pid: number): void {
  current?.kill(pid);
}

/** The running spawner's pid (tests, diagnostics). */
export function spawnerPid(): number | undefined {
  return current?.alive ? current.pid : undefined;
}
