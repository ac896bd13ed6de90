/** A child process whose stdout lines a test waits on (durability, lock and crash tests). */
import { spawn, type ChildProcess } from 'node:child_process';

export interface LineChild {
  readonly child: ChildProcess;
  /** Complete stdout lines printed so far. */
  readonly lines: string[];
  stderr(): string;
  /** Resolves once `predicate(lines)` holds; rejects if the child exits first. */
  until(predicate: (lines: string[]) => boolean): Promise<void>;
  /** Resolves when the child has exited (any cause). */
  readonly exited: Promise<void>;
}

/** Runs `script` with the same node binary; `name` labels the early-exit error. */
export function spawnLineChild(name: string, script: string, args: string[]): LineChild {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    until(predicate) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(lines)) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
        void exited.then(() => {
          if (!predicate(lines)) reject(new Error(`${name} exited early: ${stderr.slice(-2000)}`));
        });
      });
    },
  };
}
