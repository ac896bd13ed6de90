/**
 * A tenant's CPU budget counts CPU it used, not time its thread was off the CPU.
 * isolated-vm's `cpuTime` is the wall time its tasks ran (steady_clock from a task's start
 * to its end), so a guest whose process is preempted or stopped mid-task looks as if it
 * spent that time: under load from other processes (or the hypervisor), calls and launches
 * well inside `cpu_ms` could fail `timeout` (the suspected cause of CPU-limit tests that
 * once flaked on a loaded box). The deadline now also asks the process's own CPU time
 * (bridge.ts cpuLeftMs).
 *
 * Real parts: a child process running a real platform (platform-child.ts `preempted`),
 * SIGSTOPped for 2.5 s inside a launch's top-level code and again inside a call, each of
 * which runs 3 s of wall clock, ~0.5 s of it on the CPU, under `cpu_ms: 2000`. Before the
 * change both ended `timeout` ("CPU limit of 2000 ms"); a guest that really spins is still
 * stopped at its `cpu_ms` (limits.test.ts, threat-15).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnPlatformChild, writeConfigFile } from '../helpers/security-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.dispose());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a CPU budget under preemption', () => {
  it('should not charge a launch or a call for the time its process was stopped', async () => {
    const config = writeConfigFile(dir.path, [{ id: 'steady', limits: { cpu_ms: 2000, wall_ms: 30_000 } }]);
    const child = spawnPlatformChild('preempted', config, 'steady');
    try {
      for (const [marker, step] of [['launching', 'launch'], ['calling', 'call']] as const) {
        await child.until((lines) => lines.includes(marker));
        await sleep(200); // inside the guest's loop: the launch or call is running on the isolate's thread
        child.child.kill('SIGSTOP');
        await sleep(2500);
        child.child.kill('SIGCONT');
        await child.until((lines) => lines.some((l) => l.includes(`"step":"${step}"`)));
        const outcome = JSON.parse(child.lines.find((l) => l.includes(`"step":"${step}"`))!) as { ok: boolean; code?: string; message?: string };
        expect(outcome, `${step}: ${outcome.message}`).toMatchObject({ ok: true });
      }
      const called = JSON.parse(child.lines.find((l) => l.includes('"step":"call"'))!) as { value: string };
      expect(JSON.parse(called.value)).toBe('done');
    } finally {
      child.child.kill('SIGCONT');
      await child.kill();
    }
  }, 60_000);
});
