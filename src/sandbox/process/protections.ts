/**
 * What the host can put around a sandbox process on this machine, probed once, and how
 * a child is started with it (the process tier, issue 10; docs/SECURITY.md "The process
 * tier").
 *
 * - uid/gid: where the host runs as root, each process tenant's children run under
 *   uid = gid = SANDBOX_UID_BASE + the tenant's index in the config (one of its own, no
 *   supplementary groups). The child drops to it itself, first thing (sandbox-main.ts):
 *   the Node binary may live where that uid cannot read it (a root-only home), so the
 *   exec happens as root and nothing of a tenant runs before the drop.
 * - network namespace: `unshare --net` (util-linux) gives the child a namespace of its
 *   own whose only interface is a loopback that is down. It needs no network: fetch is
 *   served by the host. The IPC channel is a socketpair fd, which survives the exec.
 * - memory: a cgroup v2 `memory.max` of its own when the host's cgroup has the memory
 *   controller delegated to its children and is writable; else RLIMIT_AS via
 *   `prlimit --as` (address space, not RSS: see asLimitMb). `--core=0` either way, so
 *   a crash never writes a tenant's memory to disk.
 * - heap: `--max-old-space-size` for the child's own Node heap (its isolates' heaps are
 *   capped one by one at memory_mb by isolated-vm).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TenantLimits } from '../../config/schema.ts';

/** First uid/gid of the sandbox range; tenant i gets SANDBOX_UID_BASE + i. Below 65534 (nobody), above the usual system and login ranges. */
export const SANDBOX_UID_BASE = 61000;
/** Instances one sandbox process holds at most; a tenant with more runs more processes. */
export const INSTANCES_PER_PROCESS = 32;
/** Instances a sandbox process loads ahead of a launch (child-tier.ts, "the spare"). */
export const SPARE_INSTANCES = 1;

/**
 * Address space measured on the bench box (Node 24, isolated-vm 7, x64): the child at
 * rest with isolated-vm loaded maps ~1.4 GB; every isolate reserves ~0.53 GB more of
 * virtual ranges (V8's code and heap reservations) before its heap holds anything.
 * So RLIMIT_AS must leave room for those reservations or a plain launch fails.
 */
const BASE_AS_MB = 2048;
const ISOLATE_AS_MB = 640;
/** RSS of the child at rest (Node, isolated-vm, prelude snapshot), and per idle isolate. */
const BASE_RSS_MB = 160;
const ISOLATE_RSS_MB = 8;

/** What the host machine offers, probed once per host process. */
export interface HostCapabilities {
  readonly root: boolean;
  /** Absolute path of `unshare` when it can make a network namespace here. */
  readonly unshare: string | undefined;
  readonly prlimit: string | undefined;
  /** Absolute path of `nice` (coreutils) when it runs here. */
  readonly nice: string | undefined;
  /** The host's own cgroup v2 directory when children of it may get a memory.max. */
  readonly cgroupParent: string | undefined;
  /** Why each missing protection is missing. */
  readonly missing: Readonly<Record<string, string>>;
}

let probed: HostCapabilities | undefined;

function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The host's cgroup v2 directory, if memory is a controller its children get and we may write there. */
function cgroupParent(): string | undefined {
  try {
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    if (own === undefined) return undefined;
    // mountinfo: "... mount-point ... - cgroup2 ..." (proc(5)); field 5 is the mount point.
    const mount = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => / - cgroup2 /.test(l))
      ?.split(' ')[4];
    if (mount === undefined) return undefined;
    const dir = join(mount, own.slice(3));
    if (!readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory')) return undefined;
    accessSync(dir, constants.W_OK);
    return dir;
  } catch {
    return undefined;
  }
}

/** Probes this machine once: root, unshare that works, prlimit, a delegated cgroup v2. */
export function hostCapabilities(): HostCapabilities {
  if (probed !== undefined) return probed;
  const missing: Record<string, string> = {};
  const root = process.getuid?.() === 0;
  if (!root) missing.uid = 'the host does not run as root, so it cannot give the sandbox a uid of its own';
  let unshare = which('unshare');
  if (unshare === undefined) missing.network_namespace = 'unshare (util-linux) is not installed';
  else if (!root) {
    unshare = undefined;
    missing.network_namespace = 'a network namespace needs root';
  } else if (spawnSync(unshare, ['--net', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status !== 0) {
    unshare = undefined;
    missing.network_namespace = '`unshare --net` is not permitted here (container without CAP_SYS_ADMIN?)';
  }
  let prlimit = which('prlimit');
  // A seccomp filter (systemd's SystemCallFilter) may refuse prlimit64: then a child started through it would never run.
  if (prlimit !== undefined && spawnSync(prlimit, ['--core=0', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status !== 0) prlimit = undefined;
  let nice = which('nice');
  if (nice !== undefined && spawnSync(nice, ['-n', String(SANDBOX_NICE), 'true'], { stdio: 'ignore', timeout: 5000 }).status !== 0) nice = undefined;
  if (nice === undefined) missing.cpu_priority = '`nice` (coreutils) is not available; sandbox processes run at the host\'s CPU priority';
  const cgroup = cgroupParent();
  if (cgroup === undefined) {
    missing.cgroup = 'no writable cgroup v2 with the memory controller delegated; the memory cap is RLIMIT_AS';
    if (prlimit === undefined) missing.memory_limit = 'neither a delegated cgroup v2 nor prlimit (util-linux) is available';
  }
  probed = Object.freeze({ root, unshare, prlimit, nice, cgroupParent: cgroup, missing: Object.freeze(missing) });
  return probed;
}

let chrtProbed: string | null | undefined;

/**
 * Absolute path of `chrt` (util-linux) when it can start a command under SCHED_IDLE here,
 * probed on first use: only `priority: idle` tenants need it (a spawn of ~10 ms that a host
 * without them does not pay). A tier that wants it and lacks it says so (ProcessTier.status).
 */
export function idleScheduler(): string | undefined {
  if (chrtProbed === undefined) {
    const chrt = which('chrt');
    chrtProbed = chrt !== undefined && spawnSync(chrt, ['--idle', '0', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0 ? chrt : null;
  }
  return chrtProbed ?? undefined;
}

/** How one tenant's sandbox processes are started. Plain data, shown in /readyz. */
export interface SandboxPlan {
  /** uid/gid the child drops to; undefined when the host is not root. */
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  readonly networkNamespace: boolean;
  readonly memoryLimit: 'cgroup' | 'rlimit_as' | 'none';
  /** memory.max (cgroup) or RLIMIT_AS (rlimit_as), MB. */
  readonly memoryLimitMb: number;
  /** --max-old-space-size of the child's own Node heap, MB. */
  readonly heapMb: number;
  /** Isolates one process holds at most: instances plus its warm pool. */
  readonly isolatesPerProcess: number;
  /** The child's nice value (SANDBOX_NICE), or 0 when `nice` is not available. */
  readonly nice: number;
  /**
   * The child's scheduling policy: `idle` (SCHED_IDLE, for `compute.priority: idle`, when
   * `chrt` runs here) or `normal` (SCHED_OTHER at `nice`).
   */
  readonly cpuPolicy: 'idle' | 'normal';
}

/**
 * The CPU priority of every sandbox process, and of all its threads (set by `nice` before
 * Node starts, so every thread inherits it). An untrusted tenant's process competes for
 * the cores with the host, whose event loop serves every tenant, and with the shared
 * tenants' isolates: at nice 10 the kernel gives it about a tenth of the weight of a
 * nice-0 thread when cores are contended, and all the CPU nobody else wants when they are
 * not. Its Node start after a crash (~0.3 s of a core) and its own floods then come out of
 * its own share (THREATS F48; neighbour.p99_ratio.crash). The spawner that forks it runs at
 * this priority too, and the child inherits it from there (spawner.ts).
 */
export const SANDBOX_NICE = 10;

/**
 * `compute.priority: idle`: the child is started under `chrt --idle 0`, the kernel's
 * SCHED_IDLE policy, which every thread of it inherits. It runs only on CPU time that no
 * normal thread wants: sharing one core with a busy normal thread, a spinning process got
 * 1 tick in 400 at SCHED_IDLE against 39–40 at nice 10 (two runs each, the project's
 * 2-core VM). A normal thread that wakes on its core takes the core at once. What that
 * does for a neighbour's latency did not show beyond the noise: in a script running the
 * neighbour bench's B beside string-work's A in a sandbox process (three alternated rounds),
 * B's p99 under A over B alone was 1.05–1.64 at SCHED_IDLE and 1.87–2.14 at nice 10; in
 * the bench's own rows (`string-work-idle`, `string-work-process`, five runs) 2.52–3.89
 * against 2.54–3.21 ms. The price is the tenant's: on a host whose cores are busy its
 * calls wait, and may reach their wall_ms. Code that got out of V8 cannot leave the
 * policy: going back to SCHED_OTHER, like going from nice 10 to 0, needs CAP_SYS_NICE or
 * an RLIMIT_NICE above the default 0.
 */
export type ComputePriority = 'low' | 'idle';

/**
 * V8 flags of every sandbox process. `--single-threaded-gc`: each isolate collects its
 * garbage on its own thread, never on V8's worker pool. A tenant's `concurrency` is the
 * number of cores its isolates can keep busy; with V8's parallel and concurrent GC an
 * allocating isolate spread its collections over the pool's threads as well. Measured
 * on the 2-core bench box, a process tenant allocating for 1 s: its V8Worker threads
 * used 42 ticks of CPU beside the isolate thread's 84, and 1 beside 98 with the flag
 * (and the isolate did twice the work). For the neighbours: an allocation flood of a
 * concurrency-1 process tenant (array growth to its memory limit, each call a memory
 * breach) took a shared tenant's p99 from 1.3–1.5 to 4.3–5.9 ms; with the flag, 1.0–1.3
 * (ratio 0.92–0.94). The Map flood that aborts its process (THREATS F48): ratio
 * 2.25–2.27 → 1.51–1.67. What it costs the tenant itself: its GC pauses are not shared
 * out over other cores, so they are longer on a machine with idle cores — the price of
 * not taking them (process-tier.test.ts reads the threads' CPU from /proc).
 */
export const SANDBOX_V8_FLAGS: readonly string[] = Object.freeze(['--single-threaded-gc']);

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, Math.round(v)));

/**
 * The child's own heap: room for the payloads of calls in flight (args, results and
 * op payloads, each ≤ 16 MiB as JSON text) — never the isolates, whose heaps
 * isolated-vm caps one by one. 2 × memory_mb + 64, within 128..1024 MB.
 */
export function heapMb(limits: Pick<TenantLimits, 'memory_mb'>): number {
  return clamp(2 * limits.memory_mb + 64, 128, 1024);
}

/**
 * memory.max for a cgroup: the RSS budget of a full process (BASE_RSS_MB, its own heap,
 * and every isolate at its memory_mb plus overhead), within 256 MB..half of the
 * machine's RAM.
 */
export function cgroupLimitMb(limits: Pick<TenantLimits, 'memory_mb'>, isolates: number): number {
  return clamp(BASE_RSS_MB + heapMb(limits) + isolates * (limits.memory_mb + ISOLATE_RSS_MB), 256, totalmem() / 2 / 1048576);
}

/**
 * RLIMIT_AS: address space, so it must cover each isolate's reservations as well as its
 * heap (see ISOLATE_AS_MB). Weaker than memory.max — it bounds mappings, not resident
 * pages — but it does stop an allocation that no heap limit sees (ArrayBuffers,
 * WebAssembly memories) from taking the machine: the allocation fails inside the child
 * and V8 aborts it, not the host.
 */
export function asLimitMb(limits: Pick<TenantLimits, 'memory_mb'>, isolates: number): number {
  return BASE_AS_MB + heapMb(limits) + isolates * (ISOLATE_AS_MB + limits.memory_mb);
}

/** The plan for a tenant at `index` in the config, with `warm` blank isolates per process. */
export function planFor(index: number, limits: Pick<TenantLimits, 'memory_mb' | 'instances'>, warm: number, priority: ComputePriority = 'low', caps = hostCapabilities()): SandboxPlan {
  // The blanks of the pool and the one spare instance (child-tier.ts) besides the instances.
  const isolates = Math.min(limits.instances, INSTANCES_PER_PROCESS) + warm + SPARE_INSTANCES;
  const memoryLimit = caps.cgroupParent !== undefined ? 'cgroup' : caps.prlimit !== undefined ? 'rlimit_as' : 'none';
  return Object.freeze({
    uid: caps.root ? SANDBOX_UID_BASE + index : undefined,
    gid: caps.root ? SANDBOX_UID_BASE + index : undefined,
    networkNamespace: caps.unshare !== undefined,
    memoryLimit,
    memoryLimitMb: memoryLimit === 'cgroup' ? cgroupLimitMb(limits, isolates) : memoryLimit === 'rlimit_as' ? asLimitMb(limits, isolates) : 0,
    heapMb: heapMb(limits),
    isolatesPerProcess: isolates,
    nice: caps.nice !== undefined ? SANDBOX_NICE : 0,
    cpuPolicy: priority === 'idle' && idleScheduler() !== undefined ? 'idle' : 'normal',
  });
}

/**
 * The command that starts one child: `[chrt --idle 0] [unshare --net --] [prlimit --as=… --core=0 --]
 * node --single-threaded-gc --max-old-space-size=… sandbox-main.ts --uid … --gid … --memory-mb … --warm …`.
 * No `nice` step: the spawner that runs it is already at `plan.nice` (spawner.ts), and the
 * child inherits that priority with the rest of the chain before it.
 */
export function childCommand(plan: SandboxPlan, entry: string, memoryMb: number, warm: number, caps = hostCapabilities()): { file: string; args: string[] } {
  const chain: string[] = [];
  const chrt = plan.cpuPolicy === 'idle' ? idleScheduler() : undefined;
  if (chrt !== undefined) chain.push(chrt, '--idle', '0');
  if (plan.networkNamespace && caps.unshare !== undefined) chain.push(caps.unshare, '--net', '--');
  if (caps.prlimit !== undefined) {
    const as = plan.memoryLimit === 'rlimit_as' ? [`--as=${plan.memoryLimitMb * 1048576}`] : [];
    chain.push(caps.prlimit, ...as, '--core=0', '--');
  }
  chain.push(process.execPath, ...SANDBOX_V8_FLAGS, `--max-old-space-size=${plan.heapMb}`, entry, '--memory-mb', String(memoryMb), '--warm', String(warm));
  if (plan.uid !== undefined && plan.gid !== undefined) chain.push('--uid', String(plan.uid), '--gid', String(plan.gid));
  return { file: chain[0]!, args: chain.slice(1) };
}

/**
 * True when `dir` (the data dir) cannot be read by other uids: a sandbox uid that got out
 * of V8 would otherwise read every tenant's files. Reported in /readyz, never changed here.
 */
export function privateDir(dir: string): boolean {
  try {
    return existsSync(dir) && (statSync(dir).mode & 0o005) === 0;
  } catch {
    return false;
  }
}

/**
 * Puts a started child into a cgroup of its own under the host's (cgroup v2):
 * memory.max = the plan's limit, no swap, and the whole group killed together on OOM.
 * Returns the cgroup's directory, or undefined if any step failed (then the caller
 * reports the cap as missing for this child).
 */
export function enterCgroup(parent: string, name: string, limitMb: number, pid: number): string | undefined {
  const dir = join(parent, name);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.max'), String(limitMb * 1048576));
    for (const [file, value] of [['memory.swap.max', '0'], ['memory.oom.group', '1']] as const) {
      try {
        writeFileSync(join(dir, file), value);
      } catch {
        // optional knobs (no swap accounting on this kernel)
      }
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    return dir;
  } catch {
    removeCgroup(dir);
    return undefined;
  }
}

/** Removes a child's cgroup once its processes are gone; a leftover is harmless. */
export function removeCgroup(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still busy or already gone
  }
}
