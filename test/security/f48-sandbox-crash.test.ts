/**
 * THREATS F48 — a sandbox process of the process tier crashes: a fatal V8 OOM (a Map
 * flood that escapes the isolate's memory limit and aborts the process), a SIGSEGV and
 * a SIGKILL sent to it. Through the HTTP API on a real port:
 * - only that tenant's in-flight calls fail, with a coded `unavailable`;
 * - the shared tenant's calls succeed during and after, and /healthz answers within 1 s;
 * - the host logs one line naming tenant, app and cause, and restarts the sandbox: the
 *   attacker's next call succeeds;
 * - no acknowledged write of either tenant is lost;
 * - a sandbox that stops answering (SIGSTOP) is killed as `unresponsive`;
 * - a crash loop marks the tenant unavailable ("keeps crashing"), counted in
 *   isohost_sandbox_crashes_total;
 * - a crash the tenant's own code caused (a fatal OOM) counts against its breach budget,
 *   a SIGKILL from outside does not;
 * - the standby that replaces a crashed process is not started while the tenant's calls
 *   fill its concurrency (a process start is one more core of that tenant's work), and is
 *   started once they leave room.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_LOOP_COUNT } from '../../src/sandbox/process-tier.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { startProcessServer, until, type ProcessServer } from '../helpers/process-server.ts';

declare const fc: any;

const STORE = bundleOf({
  async put(a: { key: string; value: unknown }) {
    await fc.storage.set(a.key, a.value);
    return true;
  },
  async read(a: { key: string }) {
    return await fc.storage.get(a.key);
  },
});

const ATTACKER = bundleOf({
  async put(a: { key: string; value: unknown }) {
    await fc.storage.set(a.key, a.value);
    return true;
  },
  async read(a: { key: string }) {
    return await fc.storage.get(a.key);
  },
  async linger(a: { tag: string }) {
    fc.log.info('lingering', { tag: a.tag });
    await new Promise((r) => setTimeout(r, 20_000));
    return 'woke';
  },
  async wait(a: { tag: string; ms: number }) {
    fc.log.info('waiting', { tag: a.tag });
    await new Promise((r) => setTimeout(r, a.ms));
    return 'waited';
  },
  async mapFlood(a: { tag: string }) {
    fc.log.info('lingering', { tag: a.tag });
    // The log line is a platform op: wait for its reply so the host has seen it first.
    await new Promise((r) => setTimeout(r, 50));
    const m = new Map();
    for (let i = 0; ; i++) m.set(i, 'v' + i);
  },
});

let server: ProcessServer;

beforeAll(async () => {
  server = await startProcessServer([
    { id: 'unit-a', limits: { cpu_ms: 2000, wall_ms: 30_000 } },
    // cpu_ms high enough for the flood to outgrow the 16 MB heap (threat-13's recipe).
    { id: 'acme', compute: 'process', limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000 } },
    // CPU and wall limits above the default's: breaches are not the subject, and the machine may be shared.
    { id: 'looper', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 30_000 } },
    { id: 'frozen', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 60_000 } },
    // A breach budget that does not refill within the test: what the crashes cost it shows.
    { id: 'churner', compute: 'process', limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000, breaches_per_min: 1 } },
    { id: 'killed', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 30_000, breaches_per_min: 1 } },
    // One call fills `solo`'s concurrency; `duo` has room for a second.
    { id: 'solo', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 60_000, concurrency: 1 } },
    { id: 'duo', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 60_000, concurrency: 2 } },
  ]);
  await server.deploy('unit-a', 'store', STORE);
  await server.deploy('acme', 'attacker', ATTACKER);
  await server.deploy('looper', 'attacker', ATTACKER);
  await server.deploy('frozen', 'attacker', ATTACKER);
  await server.deploy('churner', 'attacker', ATTACKER);
  await server.deploy('killed', 'attacker', ATTACKER);
  await server.deploy('solo', 'attacker', ATTACKER);
  await server.deploy('duo', 'attacker', ATTACKER);
}, 60_000);

afterAll(() => server?.close());

/** Keeps calling the shared tenant until stopped; every call must succeed. */
function neighbourTraffic(): { stop(): Promise<{ calls: number; failures: string[] }> } {
  let running = true;
  let calls = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const key = `n${calls}`;
      const put = await server.call('unit-a', 'store', 'put', { key, value: calls });
      if (put.status !== 200) failures.push(`put ${put.status} ${JSON.stringify(put.body)}`);
      calls++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { calls, failures };
    },
  };
}

async function healthzWithin1s(): Promise<void> {
  const res = await server.get('/healthz', 1000);
  expect(res.status).toBe(200);
}

const ATTACKS = [
  { name: 'a SIGKILL of the sandbox process', method: 'linger', signal: 'SIGKILL', cause: 'sigkill' },
  { name: 'a SIGSEGV of the sandbox process', method: 'linger', signal: 'SIGSEGV', cause: 'sigsegv' },
  { name: 'a fatal V8 OOM (Map flood) in the sandbox process', method: 'mapFlood', signal: undefined, cause: 'sigabrt' },
] as const;

describe('a crash of a process tenant\'s sandbox (F48)', () => {
  for (const [n, attack] of ATTACKS.entries()) {
    it(`should survive ${attack.name}: only the attacker's in-flight call fails, coded; it restarts; no acknowledged write is lost`, async () => {
      // Acknowledged writes of both tenants before the crash.
      expect((await server.call('acme', 'attacker', 'put', { key: `before${n}`, value: { n } })).status).toBe(200);
      expect((await server.call('unit-a', 'store', 'put', { key: `before${n}`, value: { n } })).status).toBe(200);
      const pidBefore = server.tier('acme').pids()[0]!;
      const neighbour = neighbourTraffic();

      const tag = `attack-${n}`;
      const inFlight = server.call('acme', 'attacker', attack.method, { tag });
      await until(() => server.logs.some((l) => (l.fields as { tag?: string } | undefined)?.tag === tag), 20_000, 'the attack call to start');
      if (attack.signal !== undefined) process.kill(pidBefore, attack.signal);
      await healthzWithin1s();

      const res = await inFlight;
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(res.body.error.code).toBe('unavailable');
      await healthzWithin1s();

      // One log line names the tenant, the app in flight and the cause.
      const line = server.logs.find((l) => l.level === 50 && l.tenant === 'acme' && l.sandbox_pid === pidBefore);
      expect(line, JSON.stringify(server.logs.filter((l) => Number(l.level) >= 40))).toBeDefined();
      expect(line!.cause).toBe(attack.cause);
      expect(line!.apps).toEqual([expect.stringMatching(/^attacker@[0-9a-f]+$/)]);
      expect(String(line!.msg)).toContain(`sandbox process crashed (${attack.cause})`);

      // The attacker's next call succeeds (a new sandbox process), and reads what was acknowledged.
      const after = await server.call('acme', 'attacker', 'read', { key: `before${n}` });
      expect(after.status, JSON.stringify(after.body)).toBe(200);
      expect(after.body.result).toEqual({ n });
      expect(server.tier('acme').pids()).not.toContain(pidBefore);

      const { calls, failures } = await neighbour.stop();
      expect(failures).toEqual([]);
      expect(calls).toBeGreaterThan(0);
      // Every write the neighbour had acknowledged is there.
      for (const key of [`before${n}`, 'n0', `n${calls - 1}`]) {
        const r = await server.call('unit-a', 'store', 'read', { key });
        expect(r.status).toBe(200);
        expect(r.body.result).not.toBeNull();
      }
    }, 60_000);
  }

  it('should kill a sandbox process that stops answering (SIGSTOP) and fail its in-flight call, coded', async () => {
    const neighbour = neighbourTraffic();
    const inFlight = server.call('frozen', 'attacker', 'linger', { tag: 'frozen' });
    await until(() => server.logs.some((l) => (l.fields as { tag?: string } | undefined)?.tag === 'frozen'), 20_000, 'the call to start');
    // The process holding the call's instance comes first (pids() orders by instances held).
    const pid = server.tier('frozen').pids()[0]!;
    process.kill(pid, 'SIGSTOP');
    const res = await inFlight;
    expect(res.status, JSON.stringify(res.body)).toBe(503);
    expect(res.body.error.code).toBe('unavailable');
    const line = server.logs.find((l) => l.level === 50 && l.tenant === 'frozen' && l.sandbox_pid === pid);
    expect(line?.cause).toBe('unresponsive');
    await healthzWithin1s();
    expect((await server.call('frozen', 'attacker', 'put', { key: 'after', value: 1 })).status).toBe(200);
    const { failures } = await neighbour.stop();
    expect(failures).toEqual([]);
  }, 60_000);

  it("should count a crash the tenant's own code caused as a limit breach, so its breach budget throttles it; a SIGKILL from outside is not counted", async () => {
    // Three fatal OOMs spend the budget's burst (tenant-gate.ts BREACH_BURST); at one a minute it does not refill meanwhile.
    for (let i = 0; i < 3; i++) {
      const res = await server.call('churner', 'attacker', 'mapFlood', { tag: `churn${i}` });
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect(res.body.error.code).toBe('unavailable');
    }
    const refused = await server.call('churner', 'attacker', 'put', { key: 'k', value: 1 });
    expect(refused.status, JSON.stringify(refused.body)).toBe(429);
    expect(refused.body.error.code).toBe('resource_exhausted');
    expect(refused.body.error.message).toMatch(/broke its limits more than 1 times a minute/);
    const causes = server.logs.filter((l) => l.tenant === 'churner' && l.level === 50).map((l) => l.cause);
    expect(causes).toEqual(['sigabrt', 'sigabrt', 'sigabrt']);
    // Not a crash loop: that takes CRASH_LOOP_COUNT crashes, and the budget stopped the tenant first.
    expect(server.tier('churner').status().state).not.toBe('unavailable');

    // The same number of SIGKILLs, which the host cannot tell from an operator's: the tenant's next call runs.
    for (let i = 0; i < 3; i++) {
      expect((await server.call('killed', 'attacker', 'put', { key: `k${i}`, value: i })).status).toBe(200);
      const pid = server.tier('killed').pids()[0]!;
      process.kill(pid, 'SIGKILL');
      await until(() => !server.tier('killed').pids().includes(pid), 10_000, 'the sandbox process to be gone');
    }
    const after = await server.call('killed', 'attacker', 'read', { key: 'k2' });
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(after.body.result).toBe(2);
  }, 60_000);

  it("should not start a standby beside calls that fill the tenant's concurrency, and start it once they leave room", async () => {
    const tenants = ['solo', 'duo'] as const;
    for (const id of tenants) {
      expect((await server.call(id, 'attacker', 'put', { key: 'k', value: 1 })).status).toBe(200);
      await until(() => server.tier(id).status().processes.length === 2 && server.tier(id).status().standby, 30_000, `${id}'s standby`);
    }
    // One call each, running (a guest timer) in the process that holds the instance.
    const waits = tenants.map((id) => server.call(id, 'attacker', 'wait', { tag: `wait-${id}`, ms: 10_000 }));
    const tagged = (tag: string) => server.logs.some((l) => (l.fields as { tag?: string } | undefined)?.tag === tag);
    await until(() => tenants.every((id) => tagged(`wait-${id}`)), 20_000, 'both calls to run');
    // Each standby dies (pids(): the process holding instances first, the standby last).
    for (const id of tenants) {
      const standby = server.tier(id).pids().at(-1)!;
      process.kill(standby, 'SIGKILL');
      await until(() => !server.tier(id).pids().includes(standby), 10_000, `${id}'s standby to be gone`);
    }
    // duo has a free slot: its new standby comes up while its call runs.
    await until(() => server.tier('duo').status().standby, 9_000, "duo's new standby while its call runs");
    // solo's one slot is taken: no process is started beside its call, which is still running.
    const solo = server.tier('solo').status();
    expect(solo.processes).toHaveLength(1);
    expect(solo.standby).toBe(false);
    expect(solo.state).toBe('ready');
    for (const res of await Promise.all(waits)) {
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.result).toBe('waited');
    }
    // The call has ended: now solo's standby is started.
    await until(() => server.tier('solo').status().standby && server.tier('solo').status().processes.length === 2, 30_000, "solo's new standby after its call");
  }, 90_000);

  it('should mark a tenant whose sandbox keeps crashing unavailable, log it and count it', async () => {
    for (let i = 0; i < CRASH_LOOP_COUNT; i++) {
      const ok = await server.call('looper', 'attacker', 'put', { key: `k${i}`, value: i });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      const pid = server.tier('looper').pids()[0]!;
      process.kill(pid, 'SIGKILL');
      await until(() => !server.tier('looper').pids().includes(pid), 10_000, 'the sandbox process to be gone');
    }
    const refused = await server.call('looper', 'attacker', 'read', { key: 'k0' });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('unavailable');
    expect(refused.body.error.message).toMatch(/the tenant's sandbox keeps crashing; retry after \d+ s/);
    expect(server.logs.some((l) => l.tenant === 'looper' && /keeps crashing/.test(String(l.msg)))).toBe(true);
    // Each crash was one of ours: nothing else killed a looper process.
    expect(server.logs.filter((l) => l.tenant === 'looper' && l.level === 50).map((l) => l.cause)).toEqual(Array(CRASH_LOOP_COUNT).fill('sigkill'));

    const metrics = await server.get('/metrics');
    expect(metrics.body).toMatch(new RegExp(`isohost_sandbox_crashes_total\\{tenant="looper",cause="sigkill"\\} ${CRASH_LOOP_COUNT}`));
    const ready = await server.get('/readyz');
    expect(ready.body.sandbox.looper.state).toBe('unavailable');
    expect(ready.body.sandbox.looper.retry_after_s).toBeGreaterThan(0);

    // The other tenants are untouched.
    expect((await server.call('unit-a', 'store', 'read', { key: 'before0' })).status).toBe(200);
    expect((await server.call('acme', 'attacker', 'read', { key: 'before0' })).status).toBe(200);
    await healthzWithin1s();
  }, 60_000);
});
