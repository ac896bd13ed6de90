/**
 * The process tier (issue 10, "cordons"): the SandboxTier of ONE `compute: process`
 * tenant. Its isolates run only in sandbox processes that hold this tenant alone
 * (process/sandbox-main.ts), each under the protections this machine allows
 * (process/protections.ts), and the host serves their platform ops with the bindings
 * of each instance (process/supervised-process.ts). docs/SECURITY.md, "The process tier".
 *
 * Supervision:
 * - One process is started with the platform (`start`) so the first launch finds a warm
 *   pool. Launches pack onto processes already in use (up to INSTANCES_PER_PROCESS
 *   each); once every process holds instances, one more is started as a standby, idle
 *   and ready. The standby is what makes a crash cheap to recover from — the next launch
 *   takes it at once instead of waiting for a Node start — and what takes the overflow
 *   when the others are full. It costs one idle process (Node, isolated-vm, its pool).
 *   A standby is started only while the tenant's launches and calls leave a slot of its
 *   `concurrency` free (#keepStandby).
 * - When a process dies (SIGSEGV, fatal OOM abort, SIGKILL, "failed to terminate"), its
 *   in-flight calls and launches have already failed with `unavailable` and its
 *   instances have ended (their onEnded fires, so InstanceHost forgets them: later
 *   calls are `not_found`). The tier logs one line naming the tenant, the apps in flight
 *   and the cause, counts it (`isohost_sandbox_crashes_total`); the standby takes the
 *   next launch, and a new standby is started at once after a first crash, then after
 *   250 ms, 500 ms, 1 s.
 * - A crash the tenant's code can cause (isTenantCaused: a fatal OOM, a memory fault, a
 *   hung or rogue child) also counts as one limit breach of the tenant (`onTenantCrash`,
 *   wired to its TenantGate), so its breach budget throttles a tenant that keeps crashing
 *   its process as it throttles one that keeps breaching its isolates.
 * - A crash loop — CRASH_LOOP_COUNT crashes within CRASH_WINDOW_MS — marks the tenant
 *   unavailable: launches fail with `unavailable` ("keeps crashing; retry after N s")
 *   until the oldest of those crashes leaves the window, then one process is started again.
 * Nothing of another tenant is in these processes, so none of this touches them.
 */
import type { Logger } from 'pino';
import type { TenantLimits } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import type { MessageHandler, SandboxTier, TierInstance, TierLaunchSpec } from './tier.ts';
import { type ComputePriority, hostCapabilities, INSTANCES_PER_PROCESS, planFor, privateDir, type SandboxPlan } from './process/protections.ts';
import { SandboxProcess, type ExitCause } from './process/supervised-process.ts';

/**
 * Exit causes the tenant's own code can bring about: V8's fatal OOM and isolated-vm's
 * "failed to terminate" abort (`sigabrt`), a memory fault its input drove the engine into,
 * a child that stops answering while it runs the tenant's code (`unresponsive`) or that
 * breaks the protocol (`protocol`, a child the tenant took over), and a non-zero exit. Each
 * such crash counts as one limit breach against the tenant's breach budget, as a memory
 * or CPU breach of a shared tenant does (`onTenantCrash`): a crash costs the machine a
 * process and a Node start, and a tenant must not churn them for free. Not charged:
 * `sigkill`, `sigterm`, `sigint` and `sighup` (an operator, or the kernel's OOM killer,
 * which the host cannot tell apart from them here), and the host's own reasons
 * (`start_timeout`, `spawner_died`, `privileges`, `spawn_failed`).
 */
const TENANT_CAUSED = new Set(['sigabrt', 'sigsegv', 'sigbus', 'sigill', 'sigfpe', 'sigtrap', 'sigsys', 'unresponsive', 'protocol']);
export const isTenantCaused = (cause: ExitCause): boolean => TENANT_CAUSED.has(cause) || /^exit_[1-9]\d*$/.test(cause);

export const CRASH_LOOP_COUNT = 5;
export const CRASH_WINDOW_MS = 60_000;
/** How long after one of a tenant's launches or calls ends a standby that waits for room is reconsidered. */
const STANDBY_RECHECK_MS = 5;
/** Delay before the restart that follows the Nth crash in the window (index N-1). */
const BACKOFF_MS = [0, 250, 500, 1000];

/** When to restart and when to give up; the defaults above unless a caller (the bench) needs otherwise. */
export interface RestartPolicy {
  readonly backoffMs: readonly number[];
  readonly loopCount: number;
  readonly windowMs: number;
}
export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({ backoffMs: BACKOFF_MS, loopCount: CRASH_LOOP_COUNT, windowMs: CRASH_WINDOW_MS });

export interface ProcessTierOptions {
  tenantId: string;
  /** The tenant's index in the config: its sandbox uid is SANDBOX_UID_BASE + index. */
  index: number;
  /** `concurrency`: a standby is started only while fewer of the tenant's launches and calls run (#keepStandby). */
  limits: Pick<TenantLimits, 'memory_mb' | 'instances' | 'concurrency'>;
  /** Blank isolates each sandbox process keeps warm. */
  warm: number;
  /** `compute.priority`: the CPU priority of its sandbox processes (default `low`, nice 10). */
  priority?: ComputePriority;
  /** The platform's data_dir (reported: is it unreadable by the sandbox uid?). */
  dataDir: string;
  logger: Logger;
  restart?: RestartPolicy;
  /** Called once per crash of a process that had said `ready`, whose cause the tenant's code can bring about (isTenantCaused). */
  onTenantCrash?(cause: ExitCause): void;
}

/** What /readyz shows for one process tenant. */
export interface ProcessTierStatus {
  state: 'starting' | 'ready' | 'restarting' | 'unavailable' | 'closed';
  processes: number[];
  /** Instances live (or launching) in its sandbox processes. */
  instances: number;
  /** A ready process holding no instance waits for the next launch. */
  standby: boolean;
  protections: {
    uid: number | null;
    network_namespace: boolean;
    memory_limit: SandboxPlan['memoryLimit'];
    memory_limit_mb: number;
    heap_cap_mb: number;
    /** `low`: nice 10; `idle`: SCHED_IDLE; `host`: the host's priority (no `nice` here). */
    cpu_priority: ComputePriority | 'host';
    data_dir_private: boolean;
    missing: Record<string, string>;
  };
  crashes_last_minute: number;
  retry_after_s?: number;
}

export class ProcessTier implements SandboxTier {
  readonly kind = 'process' as const;
  readonly plan: SandboxPlan;
  readonly #o: ProcessTierOptions;
  readonly #procs: SandboxProcess[] = [];
  /** A process being started (or waiting out a backoff); launches wait for it. */
  #starting: Promise<SandboxProcess> | undefined;
  #crashTimes: number[] = [];
  readonly #crashCounts = new Map<string, number>();
  #unavailableUntil = 0;
  #closed = false;
  readonly #policy: RestartPolicy;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Ends a backoff wait early (close). */
  #wake: (() => void) | undefined;
  /** The process `#starting` is waiting on, once created. */
  #startingProc: SandboxProcess | undefined;
  /** A standby is wanted but waits for the tenant's work to drop below its concurrency. */
  #standbyWaits = false;
  #standbyRecheck: NodeJS.Timeout | undefined;

  constructor(options: ProcessTierOptions) {
    this.#o = options;
    this.#policy = options.restart ?? DEFAULT_RESTART_POLICY;
    this.plan = planFor(options.index, options.limits, options.warm, options.priority);
  }

  /** Starts the first sandbox process (at platform open) and logs, once, which protections are active. */
  start(): void {
    const s = this.status().protections;
    const line = { tenant: this.#o.tenantId, sandbox: { ...s, missing: undefined } };
    if (Object.keys(s.missing).length === 0) this.#o.logger.info(line, 'sandbox: every protection is active for this process tenant');
    else this.#o.logger.warn({ ...line, missing: s.missing }, `sandbox: not active for this process tenant: ${Object.keys(s.missing).join(', ')}`);
    this.#spawnAfter(0).catch(() => {});
  }

  async launch(spec: TierLaunchSpec, onMessage: MessageHandler): Promise<TierInstance> {
    const proc = await this.#pick();
    const launched = proc.launch(spec, onMessage);
    this.#keepStandby();
    return launched;
  }

  /** Crashes so far by cause (for `isohost_sandbox_crashes_total`). */
  crashes(): ReadonlyMap<string, number> {
    return this.#crashCounts;
  }

  /** Pids of the live sandbox processes (ops and tests read /proc with them). */
  pids(): number[] {
    const live = this.#procs.filter((p) => p.alive && p.pid !== undefined);
    // Those holding instances first, then the standby.
    return live.sort((a, b) => b.load - a.load).map((p) => p.pid!);
  }

  status(): ProcessTierStatus {
    const caps = hostCapabilities();
    const missing: Record<string, string> = { ...caps.missing };
    const dataDirPrivate = privateDir(this.#o.dataDir);
    if (!dataDirPrivate) missing.data_dir = 'data_dir can be read by other uids (chmod 700 it)';
    if (this.#o.priority === 'idle' && this.plan.cpuPolicy !== 'idle') missing.cpu_idle = '`chrt --idle` (util-linux) does not run here; priority: idle falls back to nice 10';
    const now = Date.now();
    const recent = this.#crashTimes.filter((t) => t > now - this.#policy.windowMs).length;
    const state = this.#closed
      ? 'closed'
      : now < this.#unavailableUntil
        ? 'unavailable'
        : this.#procs.some((p) => p.isReady)
          ? 'ready'
          : recent > 0
            ? 'restarting'
            : 'starting';
    return {
      state,
      processes: this.pids(),
      instances: this.#procs.reduce((n, p) => n + (p.alive ? p.load : 0), 0),
      standby: this.#procs.some((p) => p.isReady && p.load === 0),
      protections: {
        uid: this.plan.uid ?? null,
        network_namespace: this.plan.networkNamespace,
        memory_limit: this.plan.memoryLimit,
        memory_limit_mb: this.plan.memoryLimitMb,
        heap_cap_mb: this.plan.heapMb,
        cpu_priority: this.plan.cpuPolicy === 'idle' ? 'idle' : this.plan.nice > 0 ? 'low' : 'host',
        data_dir_private: dataDirPrivate,
        missing,
      },
      crashes_last_minute: recent,
      ...(state === 'unavailable' ? { retry_after_s: Math.ceil((this.#unavailableUntil - now) / 1000) } : {}),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#standbyRecheck);
    this.#wake?.();
    const procs = this.#procs.splice(0);
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.exited()));
  }

  /** A ready process with room; waits for one being started; starts one when all are full. */
  async #pick(): Promise<SandboxProcess> {
    for (;;) {
      if (this.#closed) throw new IsohostError('unavailable', 'the host is shutting down');
      this.#checkLoop();
      const ready = this.#procs.filter((p) => p.isReady && p.load < INSTANCES_PER_PROCESS);
      // Pack onto processes in use; the standby (idle) only when they are full or gone.
      const room = ready.find((p) => p.load > 0) ?? ready[0];
      if (room !== undefined) return room;
      const starting = this.#starting ?? this.#spawnAfter(this.#backoffNow());
      try {
        await starting;
      } catch (err) {
        // The process died before it was ready: a crash like any other (counted on exit).
        if (err instanceof IsohostError) this.#checkLoop();
        throw err instanceof IsohostError ? err : new IsohostError('unavailable', "the tenant's sandbox process could not start");
      }
    }
  }

  /**
   * Starts a standby when no process is idle (after the backoff the recent crashes call for),
   * but only while the tenant runs fewer launches and calls than its `concurrency`. A
   * process start is ~0.2 s of a core; started beside a tenant that keeps all its
   * concurrency busy, it is one more core of that tenant's work, on top of the cores its
   * concurrency allows. Then it waits, and is reconsidered STANDBY_RECHECK_MS after each of
   * the tenant's launches and calls ends (not at once: the call that follows a launch is
   * sent a few microtasks after the launch's answer).
   *
   * Measured, `neighbour.p99_ratio.crash` (a concurrency-1 tenant whose every call aborts its
   * process, THREATS F48): each crash used to put the next standby's start beside the flood
   * the standby had just taken, both cores the attacker's. Now that start waits for room,
   * which for this tenant comes when the process that took over crashes too: the start then
   * runs while nothing else of the tenant does. The neighbour's p99 under the attack,
   * six alternated pairs on the 2-core box: 2.37–3.01 ms (mean 2.73) against 2.44–3.91
   * (mean 3.15) before. What the tenant pays: after a
   * crash its next launch waits for a process start (~0.25 s) whenever it kept its
   * concurrency full until then; a tenant with a free slot keeps its standby, and with it
   * `crash.recover_ms`.
   */
  #keepStandby(): void {
    if (this.#closed || this.#starting !== undefined || Date.now() < this.#unavailableUntil) return;
    if (this.#procs.some((p) => p.alive && p.load === 0)) return;
    const busy = this.#procs.reduce((n, p) => n + (p.alive ? p.busy : 0), 0);
    if (busy >= this.#o.limits.concurrency) {
      this.#standbyWaits = true;
      return;
    }
    this.#standbyWaits = false;
    this.#spawnAfter(this.#backoffNow()).catch(() => {});
  }

  /** One of the tenant's launches or calls ended: a standby waiting for room is reconsidered shortly. */
  #settled(): void {
    if (!this.#standbyWaits || this.#standbyRecheck !== undefined || this.#closed) return;
    this.#standbyRecheck = setTimeout(() => {
      this.#standbyRecheck = undefined;
      if (this.#standbyWaits) this.#keepStandby();
    }, STANDBY_RECHECK_MS);
  }

  /** The delay before the next start: 0 with no recent crash, else the policy's step for their number. */
  #backoffNow(): number {
    const n = this.#crashTimes.filter((t) => t > Date.now() - this.#policy.windowMs).length;
    const backoff = this.#policy.backoffMs;
    return n === 0 ? 0 : (backoff[Math.min(n, backoff.length) - 1] ?? 0);
  }

  #checkLoop(): void {
    const wait = this.#unavailableUntil - Date.now();
    if (wait > 0) throw new IsohostError('unavailable', `the tenant's sandbox keeps crashing; retry after ${Math.ceil(wait / 1000)} s`);
  }

  /** Starts one process after `delayMs`; launches meanwhile wait on the returned promise. */
  #spawnAfter(delayMs: number): Promise<SandboxProcess> {
    const started = new Promise<void>((resolve) => {
      if (delayMs <= 0) return resolve();
      this.#wake = resolve;
      this.#restartTimer = setTimeout(resolve, delayMs);
    }).then(async () => {
      this.#wake = undefined;
      if (this.#closed) throw new IsohostError('unavailable', 'the host is shutting down');
      const proc = new SandboxProcess({
        tenantId: this.#o.tenantId,
        plan: this.plan,
        memoryMb: this.#o.limits.memory_mb,
        warm: this.#o.warm,
        logger: this.#o.logger,
        onExit: (p, cause, apps, said) => this.#exited(p, cause, apps, said),
        onSettled: () => this.#settled(),
      });
      this.#procs.push(proc);
      this.#startingProc = proc;
      await proc.ready;
      return proc;
    });
    const tracked = started.finally(() => {
      if (this.#starting === tracked) {
        this.#starting = undefined;
        this.#startingProc = undefined;
      }
    });
    tracked.catch(() => {});
    this.#starting = tracked;
    return tracked;
  }

  #exited(proc: SandboxProcess, cause: ExitCause, apps: string[], childSaid: string): void {
    const i = this.#procs.indexOf(proc);
    if (i >= 0) this.#procs.splice(i, 1);
    if (proc === this.#startingProc) {
      // It died before it was ready: the launches waiting on it fail now, and a restart may be scheduled below.
      this.#starting = undefined;
      this.#startingProc = undefined;
    }
    if (this.#closed || cause === 'stopped') return;
    const now = Date.now();
    const { loopCount, windowMs } = this.#policy;
    this.#crashTimes = this.#crashTimes.filter((t) => t > now - windowMs);
    this.#crashTimes.push(now);
    this.#crashCounts.set(cause, (this.#crashCounts.get(cause) ?? 0) + 1);
    // Before `ready` the process has run only the host's code: its end is not the tenant's doing.
    if (proc.wasReady && isTenantCaused(cause)) this.#o.onTenantCrash?.(cause);
    const n = this.#crashTimes.length;
    const line = { tenant: this.#o.tenantId, apps, cause, sandbox_pid: proc.pid, crashes_last_minute: n, child_said: childSaid.slice(0, 1000) || undefined };
    if (n >= loopCount) {
      this.#unavailableUntil = this.#crashTimes[n - loopCount]! + windowMs;
      const wait = this.#unavailableUntil - now;
      this.#o.logger.error(line, `sandbox process crashed (${cause}); the tenant's sandbox keeps crashing, its launches are refused for ${Math.ceil(wait / 1000)} s`);
      if (this.#procs.length === 0 && this.#starting === undefined) this.#spawnAfter(wait).catch(() => {});
      return;
    }
    this.#o.logger.error(line, `sandbox process crashed (${cause}); restarting it`);
    // The standby, if ready, takes the next launch; a process is started when none is idle.
    this.#keepStandby();
  }
}
