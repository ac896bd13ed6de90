/**
 * A child process of the netns proof whose stdout is read line by line, with every wait
 * bounded: `waitFor` rejects on its timeout or when the child exits first, never hangs.
 */
import type { ChildProcess } from 'node:child_process';

export interface LineChild {
  readonly child: ChildProcess;
  /** Complete stdout lines so far, parsed as JSON where they are JSON (else the text). */
  readonly lines: unknown[];
  stdout(): string;
  stderr(): string;
  /** Exit code (or signal name) once exited, else undefined. */
  exitStatus(): number | string | undefined;
  /** The first line (already seen or coming) that `match` accepts. */
  waitFor<T>(what: string, match: (line: unknown) => T | undefined, timeoutMs: number): Promise<T>;
  /** Resolves with the exit code (or signal name); rejects after `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<number | string>;
}

export function lineChild(name: string, child: ChildProcess): LineChild {
  const lines: unknown[] = [];
  let stdout = '';
  let stderr = '';
  let pending = '';
  let status: number | string | undefined;
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const w of [...wakers]) w();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part));
      } catch {
        lines.push(part);
      }
    }
    wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.on('error', (err) => {
    stderr += `\n[spawn error] ${err.message}`;
    status ??= 'spawn-error';
    wake();
  });
  child.on('exit', (code, signal) => {
    status = code ?? signal ?? 'unknown';
    wake();
  });

  const wait = <T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        wakers.delete(poll);
        fn();
      };
      const poll = () => {
        const found = check();
        if (found !== undefined) return done(() => resolve(found));
        if (status !== undefined) done(() => reject(new Error(`${name} exited (${status}) before ${what}\nstderr: ${stderr.slice(-3000)}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${name}: no ${what} within ${timeoutMs} ms\nstderr: ${stderr.slice(-3000)}`))), timeoutMs);
      wakers.add(poll);
      poll();
    });

  return {
    child,
    lines,
    stdout: () => stdout,
    stderr: () => stderr,
    exitStatus: () => status,
    waitFor: (what, match, timeoutMs) =>
      wait(what, () => {
        for (const line of lines) {
          const m = match(line);
          if (m !== undefined) return m;
        }
        return undefined;
      }, timeoutMs),
    waitExit: (timeoutMs) =>
      new Promise((resolve, reject) => {
        if (status !== undefined) return resolve(status);
        const timer = setTimeout(() => reject(new Error(`${name} did not exit within ${timeoutMs} ms\nstderr: ${stderr.slice(-3000)}`)), timeoutMs);
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          resolve(code ?? signal ?? 'unknown');
        });
      }),
  };
}
