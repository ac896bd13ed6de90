/**
 * `compute.priority` of a process tenant (process/protections.ts): `low` (default) runs
 * its sandbox processes at nice 10, `idle` under SCHED_IDLE, every thread of them, read
 * from /proc; /readyz says which; and a config reload that changes the priority and
 * memory_mb gives the tenant a new sandbox process at the new priority and caps, while
 * the old one closes once its calls in flight are over (process/registry.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idleScheduler } from '../../src/sandbox/process/protections.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { statField } from '../helpers/proc.ts';
import { processConfig, startProcessServer, until, type ProcessServer, type ProcessTestTenant } from '../helpers/process-server.ts';

declare const fc: any;

/** sched(7): the policies /proc reports. */
const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

const canIdle = idleScheduler() !== undefined;
if (!canIdle) console.warn('process-priority.test: `chrt --idle` does not run here; the SCHED_IDLE assertions check the fallback instead');

const APP = bundleOf({
  async count(a: { key: string }) {
    const n = ((await fc.storage.get(a.key)) ?? 0) + 1;
    await fc.storage.set(a.key, n);
    return n;
  },
  slow(a: { ms: number }) {
    return new Promise((resolve) => setTimeout(() => resolve('slept'), a.ms));
  },
});

// wall_ms 3 s for `busy`: a reload retires its old sandbox process 1 s after that.
const TENANTS: ProcessTestTenant[] = [
  { id: 'unit-a' },
  { id: 'busy', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 3000 } },
  { id: 'bg', compute: 'process', priority: 'idle', limits: { cpu_ms: 2000 } },
];

let server: ProcessServer;

beforeAll(async () => {
  server = await startProcessServer(TENANTS);
  await server.deploy('busy', 'counter', APP);
  await server.deploy('bg', 'counter', APP);
});

afterAll(async () => {
  await server?.close();
});

/** proc(5) stat of one thread: its nice value (field 19) and scheduling policy (field 41). */
function sched(pid: number, tid: string): { nice: number; policy: number } {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return { nice: Number(statField(stat, 19)), policy: Number(statField(stat, 41)) };
}

/** Every thread of every live sandbox process of `tenant`. */
function threadsOf(tenant: string): { nice: number; policy: number }[] {
  const pids = server.tier(tenant).pids();
  expect(pids.length).toBeGreaterThanOrEqual(1);
  return pids.flatMap((pid) => readdirSync(`/proc/${pid}/task`).map((tid) => sched(pid, tid)));
}

describe('compute.priority', () => {
  it('should run every thread of an idle tenant\'s sandbox under SCHED_IDLE, and a default one at nice 10', async () => {
    // Both tenants' calls work, and their instances live in their sandboxes.
    expect((await server.call('busy', 'counter', 'count', { key: 'k' })).body.result).toBe(1);
    expect((await server.call('bg', 'counter', 'count', { key: 'k' })).body.result).toBe(1);
    const busy = threadsOf('busy');
    expect(busy.length).toBeGreaterThan(1);
    for (const t of busy) expect(t).toEqual({ nice: server.tier('busy').plan.nice, policy: SCHED_OTHER });
    for (const t of threadsOf('bg')) expect(t.policy).toBe(canIdle ? SCHED_IDLE : SCHED_OTHER);
  });

  it('should say in /readyz which priority each process tenant runs at, and when idle is not available', async () => {
    const res = await server.get('/readyz');
    expect(res.body.sandbox.busy.protections.cpu_priority).toBe(server.tier('busy').plan.nice > 0 ? 'low' : 'host');
    expect(res.body.sandbox.busy.protections.missing.cpu_idle).toBeUndefined();
    const bg = res.body.sandbox.bg.protections;
    if (canIdle) {
      expect(bg.cpu_priority).toBe('idle');
      expect(bg.missing.cpu_idle).toBeUndefined();
    } else {
      expect(bg.cpu_priority).not.toBe('idle');
      expect(bg.missing.cpu_idle).toContain('chrt');
    }
  });

  it('should move a tenant to its new priority and memory caps on a config reload, letting the old sandbox finish its call in flight', async () => {
    const oldPids = server.tier('busy').pids();
    const inFlight = server.call('busy', 'counter', 'slow', { ms: 1500 });
    // The call is running in the old sandbox before the reload.
    await until(() => server.tier('busy').status().instances > 0, 10_000, 'the slow call to start');
    await new Promise((r) => setTimeout(r, 200));
    const oldHeapMb = server.tier('busy').plan.heapMb;
    const changed = (t: ProcessTestTenant): ProcessTestTenant => ({ ...t, priority: 'idle', limits: { ...t.limits, memory_mb: 96 } });
    await server.platform.reconfigure(processConfig(TENANTS.map((t) => (t.id === 'busy' ? changed(t) : t)), server.dataDir));

    // The call in flight finishes in the old process.
    const res = await inFlight;
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.result).toBe('slept');
    // New calls run in the new tier's process, at the new priority, with the tenant's data.
    const tier = server.tier('busy');
    expect(tier.plan.cpuPolicy).toBe(canIdle ? 'idle' : 'normal');
    expect((await server.call('busy', 'counter', 'count', { key: 'k' })).body.result).toBe(2);
    expect(tier.pids().some((p) => oldPids.includes(p))).toBe(false);
    for (const t of threadsOf('busy')) expect(t.policy).toBe(canIdle ? SCHED_IDLE : SCHED_OTHER);
    // Its caps come from the new memory_mb: the heap cap on the new process's command line.
    expect(tier.plan.heapMb).toBe(2 * 96 + 64);
    expect(tier.plan.heapMb).not.toBe(oldHeapMb);
    for (const p of tier.pids()) expect(readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')).toContain(`--max-old-space-size=${tier.plan.heapMb}`);
    // The old processes end once the old wall_ms (3 s) and a second have passed.
    await until(() => oldPids.every((p) => !alive(p)), 10_000, 'the old sandbox processes to exit');
    // The tenant that did not change kept its process.
    expect((await server.call('bg', 'counter', 'count', { key: 'k' })).body.result).toBe(2);
  });
});

function alive(pid: number): boolean {
  try {
    // A zombie has no threads left to list; a reaped process has no directory.
    return readdirSync(`/proc/${pid}/task`).length > 0 && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
