/**
 * V8 flags of the host process: the shared tier's isolates live in it, so these are
 * theirs too (V8 flags are per process, read when V8 starts; `v8.setFlagsFromString`
 * afterwards does not change how a heap is collected — measured).
 *
 * `--single-threaded-gc`: each heap is collected on the thread that owns it, never on
 * V8's worker pool. A tenant's `concurrency` is the number of cores its isolates can
 * keep busy; with V8's parallel and concurrent GC an allocating isolate spread its
 * collections over the pool's threads as well. Measured on the 2-core bench box
 * (`neighbour.p99_ratio.alloc`: a shared tenant growing an array to its memory limit,
 * each call a memory breach): B's p99 ratio 4.2–5.0 without the flag, 1.1–2.8 with it
 * (0.78–1.13 in a probe with one attacking caller instead of six);
 * `call.noop`, `http.call` and `call.noop.process` did not move beyond the noise of
 * three alternated runs. What it costs: the host's own collections are not shared out
 * over idle cores (its heap is small; the isolates hold the memory). The sandbox
 * processes get the same flag (process/protections.ts SANDBOX_V8_FLAGS).
 *
 * `npm start`, `npm run bench` and the test runner pass it; `bin/isohost.js` restarts
 * itself with it (the same pid, `process.execve`) for the commands that run mini-apps
 * when it was started without it, unless ISOHOST_HOST_FLAGS=off. A platform opened
 * without it says so in one `warn` line.
 */
import { accessSync, constants } from 'node:fs';

export const HOST_V8_FLAGS: readonly string[] = Object.freeze(['--single-threaded-gc']);

/** The commands of bin/isohost.js that run mini-app code in this process. */
const COMMANDS_WITH_ISOLATES = new Set(['serve', 'run', 'dev']);

/** HOST_V8_FLAGS this process was not started with. */
export function missingHostFlags(): string[] {
  return HOST_V8_FLAGS.filter((f) => !process.execArgv.includes(f));
}

/**
 * For a command that runs mini-apps, started without HOST_V8_FLAGS: replaces this
 * process with `node <flags> <execArgv> script args` (same pid, same environment plus
 * ISOHOST_HOST_FLAGS=applied, which stops a second restart). Returns when there is
 * nothing to do, when ISOHOST_HOST_FLAGS is `off` or `applied`, where `process.execve`
 * does not exist (not on Linux/macOS), or where this uid may not execute the Node binary;
 * the platform then warns.
 */
export function restartWithHostFlags(script: string, args: readonly string[]): void {
  if (!COMMANDS_WITH_ISOLATES.has(args[0] ?? '')) return;
  const missing = missingHostFlags();
  const mode = process.env.ISOHOST_HOST_FLAGS;
  if (missing.length === 0 || mode === 'off' || mode === 'applied' || typeof process.execve !== 'function') return;
  // A failed execve ends the process with a fatal error, not an exception: only a binary
  // this uid may execute is tried. Seen: a Node under /root (0700) started for another uid
  // by `setpriv`, whose exec still had root's capabilities; this process has none.
  try {
    accessSync(process.execPath, constants.X_OK);
  } catch {
    return;
  }
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, script, ...args], { ...process.env, ISOHOST_HOST_FLAGS: 'applied' });
}
