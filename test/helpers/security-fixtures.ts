/**
 * Real parts for the attack suite (test/security): a config file the real CLI reads, a
 * child process running a real platform (the same open/launch/call path `serve` uses),
 * a host event-loop probe, a free loopback port, a tmpfs mount for disk-full faults, and
 * the check that a message a guest or caller sees names no host secret.
 */
import { execFileSync } from 'node:child_process';
import { spawnLineChild, type LineChild } from './child-lines.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { testConfigObject, type TestTenant } from './platform.ts';

/** Writes a JSON config (CONTRACT §1 accepts JSON) for `tenants` into `dir`; returns its path. */
export function writeConfigFile(dir: string, tenants: TestTenant[], deployment: Record<string, unknown> = {}): string {
  const raw = testConfigObject(dir, tenants);
  const file = join(dir, 'isohost.json');
  writeFileSync(file, JSON.stringify({ ...raw, deployment: { ...raw.deployment, warm_pool: 0, ...deployment } }, null, 2));
  return file;
}

/**
 * Asserts `message` is coded-error prose a caller may see: no host path, no LevelDB
 * internals, no stack frame, and none of `secrets` (tenant ids, namespaces, data_dir).
 */
export function expectSanitised(message: unknown, secrets: readonly string[]): void {
  expect(typeof message).toBe('string');
  const text = message as string;
  for (const secret of secrets) expect(text, `leaks ${secret}`).not.toContain(secret);
  expect(text).not.toMatch(/\/tmp\/|\/work\/|node_modules|\.ts:\d|LOCK|MANIFEST|IO error|ENOSPC|v1\.[A-Za-z0-9_-]{8}/);
}

/**
 * Measures the host's event loop while `work` runs: a 5 ms interval counts its ticks
 * and the longest gap between two. A guest that could hang the host thread would show
 * one gap as long as the work.
 */
export async function whileMeasuringHost<T>(work: () => Promise<T>): Promise<{ value: T | undefined; error: unknown; ticks: number; maxGapMs: number; elapsedMs: number }> {
  let ticks = 0;
  let maxGapMs = 0;
  const t0 = performance.now();
  let last = t0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
  }, 5);
  try {
    const value = await work();
    return { value, error: undefined, ticks, maxGapMs, elapsedMs: performance.now() - t0 };
  } catch (error) {
    return { value: undefined, error, ticks, maxGapMs, elapsedMs: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

/** A loopback port that was free a moment ago (for processes that need a fixed port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Mounts a tmpfs of `sizeKb` at `dir` (root only). Returns the unmount function, or
 * the reason it could not mount (the caller skips the test with that reason).
 */
export function mountTmpfs(dir: string, sizeKb: number): { unmount(): void } | { skip: string } {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return { skip: `cannot mount a tmpfs here (needs root and mount(8)): ${String((err as Error).message).split('\n')[0]}` };
  }
  return {
    unmount() {
      // Lazy: a LevelDB left in its background-error state may hold the mount a moment longer.
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    },
  };
}

/** Whether this process may mount a tmpfs (decided once, by trying). */
export function canMountTmpfs(scratch: string): true | string {
  const probe = mountTmpfs(join(scratch, 'probe'), 64);
  if ('skip' in probe) return probe.skip;
  probe.unmount();
  return true;
}

const CHILD = fileURLToPath(new URL('../security/fixtures/platform-child.ts', import.meta.url));

/** A child process running a real platform (see test/security/fixtures/platform-child.ts). */
export interface PlatformChild extends LineChild {
  kill(): Promise<void>;
}

export function spawnPlatformChild(mode: 'set' | 'batch' | 'hold' | 'preempted', configFile: string, tenant: string): PlatformChild {
  const running = spawnLineChild('platform child', CHILD, [mode, configFile, tenant]);
  return {
    ...running,
    async kill() {
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
      await running.exited;
    },
  };
}
