/**
 * The host's V8 flags (src/host-flags.ts): `--single-threaded-gc`, so a shared tenant's
 * garbage collection runs on its isolate's thread, never on V8's worker pool, and its
 * `concurrency` bounds the cores it takes.
 * - `bin/isohost.js serve` started without the flag replaces itself (same pid) with a
 *   process that has it, and says nothing; with ISOHOST_HOST_FLAGS=off it runs without
 *   it and says so in one warn line;
 * - in a process with the flag (the test runner passes it, as npm start does), a shared
 *   tenant that allocates 3 M objects leaves V8's worker threads all but idle (read from
 *   /proc); without the flag they took a third of the CPU (measured, host-flags.ts).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HOST_V8_FLAGS, missingHostFlags } from '../../src/host-flags.ts';
import { openPlatform } from '../../src/platform.ts';
import { validateConfig } from '../../src/config/load.ts';
import { OneShotCaller } from '../../src/sandbox/one-shot.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { churn, threadTicks } from '../helpers/gc-threads.ts';
import { BIN } from '../helpers/http-cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import pino from 'pino';

/**
 * Starts `node bin/isohost.js serve` (no flags) with `env` on a data dir of its own;
 * resolves once it serves, with its pid and output so far. `stop` ends it and removes the dir.
 */
async function serve(env: NodeJS.ProcessEnv): Promise<{ pid: number; cmdline: string[]; stderr: () => string; stop: () => Promise<void> }> {
  const data = await tempDir();
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--egress-port', '0', '--data', data.path], { env: { ...process.env, ISOHOST_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      void exited.then(() => data.dispose());
      reject(new Error(`serve did not start\n${out}\n${err}`));
    }, 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!/serving on http:/.test(out)) return;
      clearTimeout(timer);
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      resolve({
        pid: child.pid!,
        cmdline,
        stderr: () => err,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
          await data.dispose();
        },
      });
    });
  });
}

describe("the host's V8 flags", () => {
  it('should be what this test process runs with (the runner passes them, as npm start does)', () => {
    expect(HOST_V8_FLAGS).toEqual(['--single-threaded-gc']);
    expect(missingHostFlags()).toEqual([]);
  });

  it('should be taken on by `isohost serve` started without them: the same pid, now with the flags, and no warning', async () => {
    const s = await serve({});
    try {
      expect(s.cmdline).toContain('--single-threaded-gc');
      expect(s.cmdline.some((a) => a.endsWith('bin/isohost.js'))).toBe(true);
      expect(s.stderr()).not.toContain('V8 runs without');
    } finally {
      await s.stop();
    }
  }, 90_000);

  it('should be left out with ISOHOST_HOST_FLAGS=off, and the platform say so in one warn line', async () => {
    const s = await serve({ ISOHOST_HOST_FLAGS: 'off' });
    try {
      expect(s.cmdline).not.toContain('--single-threaded-gc');
      const warns = s.stderr().split('\n').filter((l) => l.includes('V8 runs without --single-threaded-gc'));
      expect(warns).toHaveLength(1);
      expect(JSON.parse(warns[0]!).level).toBe(40);
    } finally {
      await s.stop();
    }
  }, 90_000);

  it("should keep a shared tenant's garbage collection on its isolate's thread: V8's worker threads stay all but idle", async () => {
    const tmp = await tempDir();
    const dir = tmp.path;
    const config = validateConfig(
      {
        deployment: { data_dir: dir, warm_pool: 1 },
        tenants: [{ id: 'unit-a', storage: { namespace: 'unit-a', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'unit-a' }, limits: { cpu_ms: 5000, wall_ms: 30_000, memory_mb: 64 } }],
      },
      dir,
    );
    const platform = await openPlatform(config, { logger: pino({ level: 'silent' }) });
    try {
      const app = bundleOf({ churn });
      const caller = new OneShotCaller(platform.host);
      const tenant = platform.tenants.get('unit-a');
      const bundle = { id: 'churn', version: 'v1', source: app, sha256: 'c'.repeat(64) };
      await caller.call(tenant, bundle, { sub: 'u', claims: {} }, 'churn', '1000');
      const before = threadTicks('self');
      await caller.call(tenant, bundle, { sub: 'u', claims: {} }, 'churn', '3000000');
      const after = threadTicks('self');
      const all = after.all - before.all;
      expect(all).toBeGreaterThan(15);
      expect(after.workers - before.workers, `${after.workers - before.workers} of ${all} ticks`).toBeLessThan(all * 0.1);
    } finally {
      await platform.close();
      await tmp.dispose();
    }
  }, 60_000);
});
