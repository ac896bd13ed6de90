/**
 * One sandbox process, host side: has the spawner (spawner.ts) start the child with its
 * protections, routes launches, calls and platform ops over the child's fd-3 socket
 * (frame-channel.ts), and ends everything it holds the moment the child dies. Supervision policy (restart, backoff, crash loops) is the tier's
 * (process-tier.ts); this file only reports how the child ended.
 *
 * The child is untrusted. Every message from it goes through parseChildMessage; a
 * message that fails the check, or names a launch or call the host never sent, is a
 * protocol violation and the child is killed at once (cause `protocol`). Platform ops
 * are served only for a call that is in flight in this process, with that call's tag
 * and the bindings of that call's instance, so a child can reach nothing its own
 * calls could not. A child that stops answering pings is killed (`unresponsive`).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { IsohostError } from '../../errors.ts';
import { LOG_OPS } from '../../bindings/log/index.ts';
import { convert, type Conversion } from '../script-form.ts';
import type { CallLimits, CallTag, MessageHandler, TierInstance, TierLaunchSpec } from '../tier.ts';
import { childCommand, enterCgroup, hostCapabilities, removeCgroup, type SandboxPlan } from './protections.ts';
import { FrameChannel } from './frame-channel.ts';
import { MAX_CHILD_FRAME_BYTES, parseChildMessage, type ChildMessage, type HostMessage, type WireError } from './protocol.ts';
import { heldBytes, SOURCE_CACHE_MAX_BYTES, SourceCache } from './source-cache.ts';
import { killSandbox, spawnSandbox, type SpawnedExit } from './spawner.ts';

const ENTRY = fileURLToPath(new URL('./sandbox-main.ts', import.meta.url));
/** Ping period, and silence after which the child counts as hung and is killed. */
const PING_MS = 1000;
const UNRESPONSIVE_MS = 10_000;
/** Time a child has to say `ready` (Node start, isolated-vm, the prelude snapshot). */
const START_TIMEOUT_MS = 60_000;
/**
 * Platform ops of one call the prelude ever has out at once (runtime-api/prelude/host.ts
 * MAX_INFLIGHT; not imported: that module is guest code, run only in isolates).
 */
const MAX_INFLIGHT = 256;
/**
 * Log ops of one call out at once. They are counted apart from MAX_INFLIGHT: the prelude
 * sends a call's last lines and its drop report one way, in no in-flight slot
 * (runtime-api/prelude/log.ts endCallLog), so a call that ends with its 256 slots full
 * (256 pending timers, say) still reports. Counted with the rest, that report killed the
 * sandbox as a protocol breach (and charged the tenant a crash). The log binding bounds
 * what they queue (MAX_QUEUED_BYTES); this bound only tells a child that is not running
 * the prelude.
 */
const MAX_LOG_OPS_INFLIGHT = 4096;
const LOG_OP_NAMES: ReadonlySet<string> = new Set(LOG_OPS);
/** Time the spawner has to report a child's exit after its channel closed; then it is ended as `channel_closed`. */
const EXIT_REPORT_MS = 2000;

/** Bytes of conversions the host keeps for sandbox processes (as much as one process keeps of sources). */
const CONVERSIONS_MAX_BYTES = SOURCE_CACHE_MAX_BYTES;
/** Bundles converted for sandbox processes, by sha256 (one esbuild run per bundle per host), and those being converted. */
const conversions = new SourceCache<Conversion>(CONVERSIONS_MAX_BYTES);
const converting = new Map<string, Promise<Conversion | undefined>>();

/**
 * The script conversion of a bundle (script-form.ts convert), or esbuild's refusal of it,
 * made on the host, so that a sandbox process never starts esbuild's service: a Go
 * process of ~12 MB RSS and ~30 ms of CPU that every sandbox start (and so every crash
 * restart) used to pay (measured, stop 24). Synchronous once made. Undefined if esbuild
 * failed in a way that says nothing of the bundle: the launch then goes without it, and
 * the child converts the bundle itself.
 */
function conversionOf(sha256: string, source: string): Conversion | Promise<Conversion | undefined> {
  const held = conversions.get(sha256);
  if (held !== undefined) return held;
  let pending = converting.get(sha256);
  if (pending === undefined) {
    pending = convertOnce(sha256, source);
    converting.set(sha256, pending);
  }
  return pending;
}

async function convertOnce(sha256: string, source: string): Promise<Conversion | undefined> {
  let c: Conversion | undefined;
  try {
    c = await convert(source);
  } catch (err) {
    c = err instanceof IsohostError ? { refused: { code: err.code, message: err.message } } : undefined;
  }
  if (c !== undefined) conversions.put(sha256, c, heldBytes('', c));
  converting.delete(sha256);
  return c;
}

/** Why a child ended: a signal name (lower case), `exit_N`, or what the host killed it for. */
export type ExitCause = string;

export interface SandboxProcessOptions {
  tenantId: string;
  plan: SandboxPlan;
  memoryMb: number;
  warm: number;
  logger: Logger;
  /** Called once, when the child has ended and everything it held has been failed. */
  onExit(proc: SandboxProcess, cause: ExitCause, apps: string[], childSaid: string): void;
  /** Called when the child has answered a launch or a call: `busy` went down by one. */
  onSettled?(): void;
}

interface PendingLaunch {
  spec: TierLaunchSpec;
  /** Sent again with its source after the child asked (`need_source`); a second ask is a violation. */
  resent: boolean;
  onMessage: MessageHandler;
  resolve(i: ProcessInstance): void;
  reject(e: unknown): void;
}

interface PendingCall {
  instance: ProcessInstance;
  tag: CallTag | undefined;
  wallMs: number;
  wallEnd: number;
  /** Platform ops of this call being served now (log ops apart, in logOps). */
  ops: number;
  logOps: number;
  /** Settled on the host (result, failure, or its instance ended); the child's reply is still awaited. */
  settled: boolean;
  resolve(json: string): void;
  reject(e: unknown): void;
}

export class SandboxProcess {
  /** Resolves when the child said `ready`; rejects if it ended first. */
  readonly ready: Promise<void>;
  readonly #o: SandboxProcessOptions;
  #pid: number | undefined;
  #channel: FrameChannel | undefined;
  #exitReportTimer: NodeJS.Timeout | undefined;
  readonly #exited: Promise<void>;
  #exitedResolve!: () => void;
  readonly #launches = new Map<number, PendingLaunch>();
  readonly #calls = new Map<number, PendingCall>();
  readonly #instances = new Map<number, ProcessInstance>();
  /** Which bundle sources the child holds: the same cache as the child's, run over the same launches. */
  readonly #childSources = new SourceCache<true>();
  #sourcesSent = 0;
  #nextId = 1;
  #alive = true;
  #isReady = false;
  #killedFor: string | undefined;
  #lastPong = Date.now();
  #pinger: NodeJS.Timeout;
  #cgroup: string | undefined;
  #readyResolve!: () => void;
  #readyReject!: (e: unknown) => void;

  constructor(options: SandboxProcessOptions) {
    this.#o = options;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // observed by the tier; never an unhandled rejection
    this.#exited = new Promise<void>((resolve) => (this.#exitedResolve = resolve));
    const { file, args } = childCommand(options.plan, ENTRY, options.memoryMb, options.warm);
    // The spawner forks, not the host: a fork here would copy the host's memory map on its event loop.
    spawnSandbox(file, args, (e) => this.#onExitReport(e)).then(
      ({ pid, channel }) => this.#spawned(pid, channel),
      () => this.#ended(null, null, '', 'spawn_failed'),
    );
    this.#pinger = setInterval(() => this.#ping(), PING_MS);
    this.#pinger.unref();
  }

  #spawned(pid: number, socket: import('node:net').Socket): void {
    this.#pid = pid;
    if (!this.#alive || this.#killedFor !== undefined) {
      socket.destroy();
      killSandbox(pid);
      return;
    }
    const caps = hostCapabilities();
    const o = this.#o;
    if (o.plan.memoryLimit === 'cgroup' && caps.cgroupParent !== undefined) {
      // Before the first frame: the child says `ready` only after it, and no launch reaches it before `ready`.
      this.#cgroup = enterCgroup(caps.cgroupParent, `isohost-${o.tenantId}-${pid}`, o.plan.memoryLimitMb, pid);
      if (this.#cgroup === undefined) o.logger.warn({ tenant: o.tenantId, sandbox_pid: pid }, 'sandbox: could not put the process into a cgroup; it runs without memory.max');
    }
    this.#channel = new FrameChannel(socket, MAX_CHILD_FRAME_BYTES, {
      message: (raw) => this.#onMessage(raw),
      violation: (what) => this.#violation(what),
      close: () => this.#onChannelClosed(),
    });
    // The child writes nothing before this first frame (its fd-3 end was still in the spawner until now).
    this.#send({ t: 'ping', id: this.#nextId++ });
  }

  #onExitReport(e: SpawnedExit): void {
    if (e.spawnerDied) this.#killedFor ??= 'spawner_died';
    this.#ended(e.code, e.signal, e.stderr);
  }

  /** The channel closed: the child is dying or dead; the spawner's report says how, else `channel_closed`. */
  #onChannelClosed(): void {
    if (!this.#alive || this.#exitReportTimer !== undefined) return;
    if (this.#pid !== undefined) killSandbox(this.#pid);
    this.#exitReportTimer = setTimeout(() => this.#ended(null, null, '', 'channel_closed'), EXIT_REPORT_MS);
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  get alive(): boolean {
    return this.#alive;
  }

  get isReady(): boolean {
    return this.#isReady && this.#alive;
  }

  /** It said `ready` once (alive or not): from then on it ran tenant code; before, only the host's. */
  get wasReady(): boolean {
    return this.#isReady;
  }

  /** Launches that carried their bundle's source to the child (the others found it there). */
  get sourcesSent(): number {
    return this.#sourcesSent;
  }

  /**
   * Launches and calls the child is working on: sent and not yet answered by it. A call the
   * host has already failed (its wall time ran out) counts until the child answers, since
   * the child may still be running it.
   */
  get busy(): number {
    return this.#launches.size + this.#calls.size;
  }

  /** Instances live or launching here (the tier's measure of room). */
  get load(): number {
    return this.#instances.size + this.#launches.size;
  }

  launch(spec: TierLaunchSpec, onMessage: MessageHandler): Promise<TierInstance> {
    if (!this.#alive) return Promise.reject(gone());
    const id = this.#nextId++;
    return new Promise<TierInstance>((resolve, reject) => {
      this.#launches.set(id, { spec, resent: false, onMessage, resolve, reject });
      this.#sendLaunch(id, spec, this.#childSources.get(spec.sha256) === undefined);
    });
  }

  /**
   * Sends a launch; its source, with the host's conversion of it (conversionOf), only when
   * the child does not hold it yet: a bundle crosses once per process.
   */
  #sendLaunch(id: number, spec: TierLaunchSpec, withSource: boolean): void {
    const { source, converted, ...rest } = spec;
    if (!withSource) return this.#send({ t: 'launch', id, spec: rest });
    const ready = converted ?? conversionOf(spec.sha256, source);
    if (!(ready instanceof Promise)) return this.#sendWithSource(id, rest, source, ready);
    void ready.then((c) => this.#sendWithSource(id, rest, source, c));
  }

  #sendWithSource(id: number, rest: Omit<TierLaunchSpec, 'source' | 'converted'>, source: string, converted: Conversion | undefined): void {
    // Ended meanwhile (the child died, or the host gave up on it): nothing to send.
    if (!this.#launches.has(id)) return;
    this.#childSources.put(rest.sha256, true, heldBytes(source, converted));
    this.#sourcesSent++;
    this.#send({ t: 'launch', id, spec: converted === undefined ? { ...rest, source } : { ...rest, source, converted } });
  }

  /** @internal ProcessInstance.call */
  _call(instance: ProcessInstance, method: string, argsJson: string, limits: CallLimits, tag: CallTag | undefined): Promise<string> {
    if (!this.#alive) return Promise.reject(gone());
    const id = this.#nextId++;
    return new Promise<string>((resolve, reject) => {
      const pending: PendingCall = { instance, tag, wallMs: limits.wallMs, wallEnd: 0, ops: 0, logOps: 0, settled: false, resolve, reject };
      this.#calls.set(id, pending);
      instance._pending.add(pending);
      this.#send({ t: 'call', id, instance: instance.id, method, args: argsJson, cpuMs: limits.cpuMs, wallMs: limits.wallMs });
    });
  }

  /** @internal ProcessInstance.dispose: the child ends the isolate. */
  _dispose(instance: ProcessInstance): void {
    if (this.#alive) this.#send({ t: 'dispose', instance: instance.id });
  }

  /** @internal the instance has ended, whatever ended it. */
  _forget(instance: ProcessInstance): void {
    this.#instances.delete(instance.id);
  }

  /** Kills the child; `why` becomes the exit cause (undefined: a deliberate stop, not a crash). */
  kill(why?: string): void {
    if (!this.#alive) return;
    this.#killedFor ??= why ?? 'stopped';
    // Through the spawner, which knows whether the pid is still its un-reaped child; before `spawned`, #spawned kills it.
    if (this.#pid !== undefined) killSandbox(this.#pid);
  }

  /** Resolves once the child is gone (after kill). */
  exited(): Promise<void> {
    return this.#exited;
  }

  #send(m: HostMessage): void {
    // A closed channel drops it; the exit report (or the channel_closed timer) fails what is pending.
    if (this.#alive) this.#channel?.send(m);
  }

  #ping(): void {
    if (!this.#alive) return;
    // Before `ready` the child is loading (seconds on a busy machine) and answers no ping yet.
    if (!this.#isReady) {
      if (Date.now() - this.#lastPong > START_TIMEOUT_MS) this.kill('start_timeout');
      return;
    }
    if (Date.now() - this.#lastPong > UNRESPONSIVE_MS) return this.kill('unresponsive');
    this.#send({ t: 'ping', id: this.#nextId++ });
  }

  /** The kernel's view (/proc), not the child's word: every uid and gid is the plan's. */
  #runsAsPlanned(): boolean {
    const { uid, gid } = this.#o.plan;
    if (uid === undefined || gid === undefined) return true;
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const ids = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
      const uids = ids('Uid');
      const gids = ids('Gid');
      // real, effective, saved and filesystem ids, all four
      return uids.length === 4 && gids.length === 4 && uids.every((v) => v === uid) && gids.every((v) => v === gid);
    } catch {
      return false;
    }
  }

  #violation(what: string): void {
    this.#o.logger.error({ tenant: this.#o.tenantId, sandbox_pid: this.pid, violation: what }, 'sandbox process broke the protocol; killing it');
    this.kill('protocol');
  }

  #onMessage(raw: unknown): void {
    if (!this.#alive) return;
    const m: ChildMessage | undefined = parseChildMessage(raw);
    if (m === undefined) return this.#violation('malformed message');
    switch (m.t) {
      case 'ready':
        if (!this.#runsAsPlanned()) {
          this.#o.logger.error({ tenant: this.#o.tenantId, sandbox_pid: this.pid }, 'sandbox process is not running under its own uid/gid; killing it');
          return this.kill('privileges');
        }
        this.#isReady = true;
        this.#lastPong = Date.now();
        return this.#readyResolve();
      case 'pong':
        this.#lastPong = Date.now();
        return;
      case 'need_source': {
        const pending = this.#launches.get(m.id);
        if (pending === undefined || pending.resent) return this.#violation('asked twice, or for an unknown launch, for a bundle source');
        // The two caches run the same steps over the same launches; a child that asks anyway is buggy or lying.
        this.#o.logger.warn({ tenant: this.#o.tenantId, sandbox_pid: this.pid }, 'sandbox process lacked a bundle source the host thought it held; sending it again');
        pending.resent = true;
        return this.#sendLaunch(m.id, pending.spec, true);
      }
      case 'launched':
      case 'launch_failed': {
        const pending = this.#launches.get(m.id);
        if (pending === undefined) return this.#violation('reply to an unknown launch');
        this.#launches.delete(m.id);
        this.#o.onSettled?.();
        if (m.t === 'launch_failed') return pending.reject(coded(m.error));
        const inst = new ProcessInstance(this, m.id, m.methods, m.warm, pending.onMessage, pending.spec.label);
        this.#instances.set(m.id, inst);
        return pending.resolve(inst);
      }
      case 'result':
      case 'call_failed': {
        const pending = this.#calls.get(m.id);
        if (pending === undefined) return this.#violation('reply to an unknown call');
        this.#calls.delete(m.id);
        this.#o.onSettled?.();
        pending.instance._pending.delete(pending);
        if (m.t === 'call_failed' && m.ended) pending.instance._end(coded(m.error));
        if (pending.settled) return;
        pending.settled = true;
        return m.t === 'result' ? pending.resolve(m.json) : pending.reject(coded(m.error));
      }
      case 'op':
        return this.#serveOp(m);
    }
  }

  /** One platform op of an in-flight call, served with that call's instance bindings and tag. */
  #serveOp(m: Extract<ChildMessage, { t: 'op' }>): void {
    if (m.call >= this.#nextId) return this.#violation('op for a call never sent');
    const call = this.#calls.get(m.call);
    const reply = (r: { json: string; bytes?: ArrayBuffer } | WireError) =>
      this.#send('code' in r ? { t: 'reply', id: m.id, ok: false, error: r } : r.bytes === undefined ? { t: 'reply', id: m.id, ok: true, json: r.json } : { t: 'reply', id: m.id, ok: true, json: r.json, bytes: r.bytes });
    if (call === undefined || call.settled) return reply({ code: 'invalid_request', message: 'platform calls are only served while a call is running' });
    // The call has started by now, so its wall budget ends within wallMs from now; a child cannot stretch it.
    const wallEnd = Math.min(m.wallEnd, Date.now() + call.wallMs);
    if (wallEnd !== call.wallEnd) {
      call.wallEnd = wallEnd;
      call.tag?.started(wallEnd);
    }
    // The prelude never has more than MAX_INFLIGHT ops of a call out, besides its log ops; a child that does is not running it.
    const isLog = LOG_OP_NAMES.has(m.op);
    if (isLog ? call.logOps >= MAX_LOG_OPS_INFLIGHT : call.ops >= MAX_INFLIGHT) return this.#violation('more platform ops in flight than the prelude allows');
    let payload: unknown;
    try {
      payload = JSON.parse(m.payload);
    } catch {
      return reply({ code: 'invalid_request', message: 'platform call payload is not JSON' });
    }
    if (isLog) call.logOps++;
    else call.ops++;
    call.instance
      ._onMessage(m.op, payload, m.bytes, call.tag)
      .then(reply, (e: unknown) => reply(e instanceof IsohostError ? { code: e.code, message: e.message } : { code: 'internal', message: 'internal error' }))
      .finally(() => {
        if (isLog) call.logOps--;
        else call.ops--;
      });
  }

  #ended(code: number | null, signal: NodeJS.Signals | null, stderr: string, fallback = 'spawn_failed'): void {
    if (!this.#alive) return;
    this.#alive = false;
    clearInterval(this.#pinger);
    clearTimeout(this.#exitReportTimer);
    // A child still running (spawner died, or no exit report) exits when its channel closes.
    this.#channel?.close();
    if (this.#cgroup !== undefined) removeCgroup(this.#cgroup);
    const cause = this.#killedFor ?? (signal !== null ? signal.toLowerCase() : code !== null ? `exit_${code}` : fallback);
    const apps = new Set<string>();
    const err = new IsohostError('unavailable', `the tenant's sandbox process ended (${cause}); the instance is gone`);
    for (const l of this.#launches.values()) {
      apps.add(appOf(l.spec.label));
      l.reject(err);
    }
    this.#launches.clear();
    for (const c of this.#calls.values()) {
      if (c.settled) continue;
      apps.add(appOf(c.instance.label));
      c.settled = true;
      c.reject(err);
    }
    this.#calls.clear();
    for (const inst of this.#instances.values()) inst._end(err);
    this.#instances.clear();
    this.#readyReject(err);
    this.#o.onExit(this, cause, [...apps], stderr);
    this.#exitedResolve();
  }
}

/** `tenant/app@version/instance` → `app@version` (labels are host-made, never guest text). */
function appOf(label: string): string {
  return label.split('/')[1] ?? label;
}

function coded(e: WireError): IsohostError {
  return new IsohostError(e.code, e.message);
}

function gone(): IsohostError {
  return new IsohostError('unavailable', "the tenant's sandbox process has ended");
}

/** One instance in a sandbox process; its isolate lives in the child, its bindings here. */
export class ProcessInstance implements TierInstance {
  readonly id: number;
  readonly methods: readonly string[];
  readonly label: string;
  /** Whether the isolate came from the child's warm pool. */
  readonly warm: boolean;
  /** @internal calls sent and not yet answered by the child */
  readonly _pending = new Set<PendingCall>();
  readonly #proc: SandboxProcess;
  readonly #onMessage: MessageHandler;
  #ended = false;
  #reason: IsohostError | undefined;
  readonly #listeners: ((r: IsohostError | undefined) => void)[] = [];

  constructor(proc: SandboxProcess, id: number, methods: string[], warm: boolean, onMessage: MessageHandler, label: string) {
    this.#proc = proc;
    this.warm = warm;
    this.id = id;
    this.methods = Object.freeze(methods);
    this.#onMessage = onMessage;
    this.label = label;
  }

  get ended(): boolean {
    return this.#ended;
  }

  call(method: string, argsJson: string, limits: CallLimits, tag?: CallTag): Promise<string> {
    if (this.#ended) return Promise.reject(this.#reason ?? new IsohostError('not_found', 'the instance has ended'));
    return this.#proc._call(this, method, argsJson, limits, tag);
  }

  dispose(reason?: IsohostError): void {
    if (this.#ended) return;
    this.#proc._dispose(this);
    this._end(reason ?? new IsohostError('not_found', 'the instance has ended'));
  }

  onEnded(listener: (reason: IsohostError | undefined) => void): void {
    if (this.#ended) queueMicrotask(() => listener(this.#reason));
    else this.#listeners.push(listener);
  }

  /** @internal a platform op of one of this instance's calls */
  _onMessage(op: string, payload: unknown, bytes: ArrayBuffer | undefined, tag: CallTag | undefined): ReturnType<MessageHandler> {
    return this.#onMessage(op, payload, bytes, tag);
  }

  /** @internal ends the instance: its calls in flight reject with `reason` at once. */
  _end(reason: IsohostError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#reason = reason;
    this.#proc._forget(this);
    for (const c of this._pending) {
      if (c.settled) continue;
      c.settled = true;
      c.reject(reason);
    }
    for (const l of this.#listeners.splice(0)) l(reason);
  }
}
