import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WRITER = fileURLToPath(new URL('../storage/fixtures/storage-writer.ts', import.meta.url));

/** A running storage-writer child and the stdout lines it printed so far. */
export interface WriterChild {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves once `predicate(lines)` holds; rejects if the child exits first. */
  until(predicate: (lines: string[]) => boolean): Promise<void>;
  /** Resolves when the child has exited (any cause). */
  exited: Promise<void>;
}

/** Spawns test/storage/fixtures/storage-writer.ts with the same node binary. */
export function spawnWriter(mode: 'set' | 'batch' | 'hold' | 'open', dataDir: string, isolation: string): WriterChild {
  const child = spawn(process.execPath, [WRITER, mode, dataDir, isolation], { stdio: ['ignore', 'pipe', 'pipe'] });
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
        exited.then(() => {
          if (!predicate(lines)) reject(new Error(`writer exited early: ${stderr.slice(-2000)}`));
        });
      });
    },
  };
}
