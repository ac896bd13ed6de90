/**
 * The boundary. The ONLY file in src/ that imports isolated-vm (STYLE habit 2).
 *
 * What crosses, and how:
 * - host → guest: References to *guest* functions (`load`, `call`, `batch`, `settle`)
 *   applied with copied arguments; no Reference to a host object ever enters an isolate.
 * - guest → host: two `ivm.Callback`s, which arrive in the isolate as plain functions
 *   whose arguments are copied: `post(id, op, json, bytes)` (ignored mode: the guest
 *   never blocks) and `hostSync(op, json)` (sync mode, tenant-free utilities).
 *   Both are captured by the prelude's closure; `__isohost` is deleted before any
 *   mini-app code runs.
 * - Every value coming out of the guest is type-checked here before it reaches a binding.
 *
 * Limits: `memoryLimit` per isolate. No tenant code runs on the host's main thread: a
 * bundle's top-level code, the exports step and every method call run asynchronously on
 * the isolate's own thread, under the host's own CPU and wall deadline, kept on the
 * isolate's live `cpuTime`; when either passes, the host disposes the isolate and ends
 * the launch or call at once. isolated-vm's `timeout` option is not used anywhere: it
 * does not cover promise-returning calls (#518/#318), and when it cannot stop a script
 * (a built-in that does not check for interrupts, e.g. a 60 M-char regexp replace) its
 * "Script failed to terminate" path suspends the isolate's thread and raises a
 * catastrophic error that crashed the host in `UvScheduler::IncrementUvRef` (THREATS
 * F42). `dispose()` of a running isolate only requests termination (it never waits on
 * the isolate's thread): such a built-in keeps its pool thread busy until it returns,
 * off the event loop, and the isolate is gone then. A disposed isolate is never reused.
 *
 * Failures are classified by state the host owns, never by error text a guest can
 * write (issue 11): the host's deadline fired or the host disposed the instance (its
 * recorded reason), or isolated-vm disposed the isolate itself, which it does only for
 * its memory limit (`isDisposed` without a host reason).
 *
 * Longer than the 250-line habit on purpose: the rule that one file holds every
 * isolated-vm handle (checked by the before-stop hook and test/security) wins over
 * splitting it.
 */
import ivm from 'isolated-vm';
import { IsohostError, isErrorCode, type ErrorCode } from '../errors.ts';
import { formOf, toScriptForm, type ScriptForm } from './script-form.ts';
import type { CallLimits, CallTag, MessageHandler, TierInstance, TierLaunchSpec } from './tier.ts';

export type SyncHandler = (op: string, payloadJson: string) => string | ArrayBuffer;

const MAX_MESSAGE_CHARS = 16 * 1024 * 1024;
/** Longest payload of a synchronous utility call (the prelude refuses longer ones before they cross: host.ts MAX_SYNC_CHARS). */
const MAX_SYNC_CHARS = 64 * 1024;
const OP_RE = /^[a-z][a-z0-9.]{0,40}$/;
/** The id of a message the guest sends one way (prelude host.ts `notify`): served, never answered. */
const ONE_WAY_ID = 0;
const noReply = (): void => {};
/** The guest's "result of batch call N" message (prelude host.ts `postDone`); never a binding op (OP_RE). */
const DONE_OP = '$done';

let snapshot: ivm.ExternalCopy<ArrayBuffer> | undefined;

/**
 * Run once, in a throwaway context, while the snapshot is made (isolated-vm's
 * `warmup_script`): V8 keeps the bytecode it compiled, not the state, so attach, load
 * (bind + exports) and call start compiled in every isolate (attach+bind+exports 0.29 → 0.18 ms
 * per launch, measured). It is our own code with throwaway callbacks, nothing a tenant
 * wrote (THREATS A6).
 */
const SNAPSHOT_WARMUP = `(() => {
  const c = globalThis.__isohost.attach(() => '{"ok":null}', () => {});
  c.load(function () { return { f(a) { return a; } }; }, '{"app":{"id":"w","version":"1"},"user":{"sub":"u","claims":{"scope":["a"]}}}');
  c.call('f', '{"a":[1,"x",{"b":null}]}');
  c.call('missing', 'null');
  c.batch(['f', '1', 'missing', 'null', 'f', '2']);
})();`;

/** Builds the prelude snapshot once per process from our own prelude source. */
export function prepareSnapshot(preludeSource: string): void {
  snapshot ??= ivm.Isolate.createSnapshot([{ code: preludeSource, filename: 'isohost:prelude' }], SNAPSHOT_WARMUP);
}

/** A blank isolate: prelude attached, not yet bound to any tenant. Opaque outside this file. */
export interface BlankIsolate {
  readonly memoryMb: number;
  /** @internal */ readonly _state: BlankState;
}
interface BlankState {
  isolate: ivm.Isolate;
  context: ivm.Context;
  load: ivm.Reference<(main: unknown, meta: string) => string>;
  call: ivm.Reference<(method: string, args: string) => Promise<string>>;
  batch: ivm.Reference<(flat: string[]) => Promise<string>>;
  settle: ivm.Reference<(id: number, ok: boolean, json: string, bytes: ArrayBuffer | undefined) => void>;
  /** The isolate's `memoryLimit`, kept here: a disposed isolate can no longer report it. */
  memoryMb: number;
  /**
   * Host time spent in this isolate's synchronous utility calls (ns). The guest waits
   * for them without spending its own CPU, so they are added to its CPU time: a loop of
   * bounded URL parses is charged to the tenant, not to the host (THREATS F43).
   */
  hostNs: bigint;
  /** Whose isolate this is, for the one log line written if V8 loses control of it. */
  owner: { label: string };
  /** Messages the guest has posted so far (the post callback counts each). */
  posted: number;
  /** Set once at launch; the post callback routes through it. */
  onMessage: ((id: number, op: string, payload: string, bytes: unknown) => void) | undefined;
  used: boolean;
}

/**
 * Creates a blank isolate (new Isolate from the snapshot + context + attach), for the
 * warm pool's refills and cold launches alike: the context is deserialised on the
 * isolate's own thread, so it holds the host's event loop only for `new Isolate` and
 * the attach (a breached isolate's replacement is the main-thread cost a noisy tenant
 * imposes on its neighbours, THREATS B17).
 */
export async function createBlankAsync(memoryMb: number, syncHandler: SyncHandler): Promise<BlankIsolate> {
  const { isolate, owner } = newIsolate(memoryMb);
  try {
    return attachBlank(isolate, await isolate.createContext(), memoryMb, owner, syncHandler);
  } catch (err) {
    if (!isolate.isDisposed) isolate.dispose();
    throw err;
  }
}

function newIsolate(memoryMb: number): { isolate: ivm.Isolate; owner: { label: string } } {
  if (snapshot === undefined) throw new IsohostError('internal', 'prelude snapshot not prepared');
  const owner = { label: 'a blank isolate (no tenant bound yet)' };
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, snapshot, onCatastrophicError: (message) => catastrophe(owner.label, message) });
  return { isolate, owner };
}

function attachBlank(isolate: ivm.Isolate, context: ivm.Context, memoryMb: number, owner: { label: string }, syncHandler: SyncHandler): BlankIsolate {
  const state = { isolate, context, memoryMb, owner, onMessage: undefined, used: false, hostNs: 0n, posted: 0 } as unknown as BlankState;
  const post = new ivm.Callback(
    (id: unknown, op: unknown, payload: unknown, bytes: unknown) => {
      // Every message counts, as the prelude counts every post (host.ts stampResult).
      state.posted++;
      if (typeof id !== 'number' || typeof op !== 'string' || typeof payload !== 'string') return;
      state.onMessage?.(id, op, payload, bytes);
    },
    { ignored: true },
  );
  const sync = new ivm.Callback((op: unknown, payload: unknown) => {
    if (typeof op !== 'string' || typeof payload !== 'string' || payload.length > MAX_SYNC_CHARS) {
      return JSON.stringify({ error: { code: 'invalid_request', message: 'bad platform call' } });
    }
    const t0 = process.hrtime.bigint();
    try {
      return syncHandler(op, payload);
    } finally {
      state.hostNs += process.hrtime.bigint() - t0;
    }
  });
  // Reference operations rather than evalClosureSync: no script to compile per
  // isolate (0.25 ms of a cold launch).
  const global = context.global;
  const isohost = global.getSync('__isohost', { reference: true }) as ivm.Reference<Record<string, unknown>>;
  const attach = isohost.getSync('attach', { reference: true }) as ivm.Reference<(s: unknown, p: unknown) => unknown>;
  const control = attach.applySync(undefined, [sync, post], { result: { reference: true } }) as ivm.Reference<Record<string, unknown>>;
  global.deleteSync('__isohost');
  attach.release();
  isohost.release();
  state.load = control.getSync('load', { reference: true }) as BlankState['load'];
  state.call = control.getSync('call', { reference: true }) as BlankState['call'];
  state.batch = control.getSync('batch', { reference: true }) as BlankState['batch'];
  state.settle = control.getSync('settle', { reference: true }) as BlankState['settle'];
  control.release();
  return { memoryMb, _state: state };
}

/**
 * V8 lost control of an isolate (isolated-vm's `onCatastrophicError`): a heap OOM the
 * memory limit did not catch — e.g. a Map or dictionary object whose rehash needs more
 * than the heap has left (isolated-vm #457, #527, #107). The isolate's thread never
 * returns and the process can no longer even exit normally; isolated-vm's advice is to
 * end it. Without this handler V8 aborts anyway, but anonymously: this names the
 * tenant, app and instance first, so the operator knows whose code did it (THREATS B13;
 * docs/SECURITY.md: the process tier is the answer for untrusted partners).
 */
function catastrophe(label: string, message: string): never {
  const line = { level: 60, time: Date.now(), msg: 'V8 lost control of an isolate; aborting the process', isolate: label, error: message };
  process.stderr.write(`${JSON.stringify(line)}\n`);
  process.abort();
}

export function disposeBlank(blank: BlankIsolate): void {
  if (!blank._state.isolate.isDisposed) blank._state.isolate.dispose();
}

/**
 * Per bundle sha256: its script form and the V8 code cache produced by compiling it
 * here — in memory only, never read from anywhere a tenant can write (THREATS A6,
 * isolated-vm CVE-2022-39266). Bounded in bytes, not entries (THREATS F44: a tenant
 * uploading many large bundles must not grow the host without limit); least recently
 * launched first out. A form larger than the whole budget is not kept.
 */
interface Compiled {
  form: ScriptForm;
  cachedData: ivm.ExternalCopy<ArrayBuffer>;
  /** The form's bytes plus the code cache's. */
  bytes: number;
}
const compiled = new Map<string, Compiled>();
/** Host memory the compile cache may hold (script forms and V8 code caches together). */
export const COMPILED_MAX_BYTES = 64 * 1024 * 1024;
let compiledBytes = 0;

function remember(sha256: string, entry: Compiled): void {
  if (entry.bytes > COMPILED_MAX_BYTES || compiled.has(sha256)) return;
  while (compiledBytes + entry.bytes > COMPILED_MAX_BYTES) {
    const [oldest, old] = compiled.entries().next().value!;
    compiled.delete(oldest);
    compiledBytes -= old.bytes;
    old.cachedData.release();
  }
  compiled.set(sha256, entry);
  compiledBytes += entry.bytes;
}

function recall(sha256: string): Compiled | undefined {
  const entry = compiled.get(sha256);
  if (entry !== undefined) {
    // Map order is insertion order: re-inserting makes it the most recently used.
    compiled.delete(sha256);
    compiled.set(sha256, entry);
  }
  return entry;
}

/**
 * Replaces a bundle's code cache with one made after its first launch ran (see
 * recacheAfterLoad). Only the entry of the same form is touched: an entry evicted or
 * replaced meanwhile stays as it is.
 */
function upgrade(sha256: string, form: ScriptForm, cachedData: ivm.ExternalCopy<ArrayBuffer>, cacheBytes: number): void {
  const entry = compiled.get(sha256);
  if (entry === undefined || entry.form !== form) {
    cachedData.release();
    return;
  }
  const bytes = form.bytes + cacheBytes;
  if (compiledBytes - entry.bytes + bytes > COMPILED_MAX_BYTES) {
    cachedData.release();
    return;
  }
  entry.cachedData.release();
  compiledBytes += bytes - entry.bytes;
  compiled.set(sha256, { form, cachedData, bytes });
}

/** What the compile cache holds now (for tests and /metrics). */
export function compiledCacheBytes(): number {
  return compiledBytes;
}

/** The CPU time charged to an isolate's tenant (ns): its own thread's, plus its synchronous host calls'. */
function chargedCpu(s: BlankState): bigint {
  return s.isolate.cpuTime + s.hostNs;
}

/** This process's CPU time so far (ns), all threads. */
function processCpu(): bigint {
  const u = process.cpuUsage();
  return BigInt(u.user + u.system) * 1000n;
}

/**
 * Milliseconds left of a CPU budget of `budgetMs` that ends at `end` (chargedCpu ns).
 * isolated-vm's `cpuTime` is the wall time its tasks ran (steady_clock from a task's start
 * to its end, `Executor::CpuTimer`), so an isolate thread preempted by other processes (or
 * by the hypervisor), or a stopped process, is charged for time it did not run. No thread
 * of a process uses more CPU than the whole process: when `cpuTime` says the budget is
 * spent but the process has not spent that much CPU since `since` (a moment no later than
 * the budget's start), the budget is not spent. The process is asked only once `cpuTime`
 * says so, and answers ≤ 0 when it spent the budget too, which keeps the check as strict
 * as before whenever the isolate may really have run that long.
 */
function cpuLeftMs(s: BlankState, end: bigint, budgetMs: number, since: bigint): number {
  const left = Number(end - chargedCpu(s)) / 1e6;
  return left > 0 ? left : budgetMs - Number(processCpu() - since) / 1e6;
}

/** How old the process CPU reading a budget starts from may be (ms). */
const CPU_SAMPLE_MS = 5;
let cpuSample = { atMs: Number.NEGATIVE_INFINITY, ns: 0n };

/**
 * The process's CPU time at a moment at most CPU_SAMPLE_MS ago (a syscall, ~2 µs, made at
 * most that often rather than once per round trip). An older reading only makes
 * cpuLeftMs stricter: the process's CPU since then is at least its CPU since now.
 */
function processCpuBefore(): bigint {
  const now = performance.now();
  if (now - cpuSample.atMs > CPU_SAMPLE_MS) cpuSample = { atMs: now, ns: processCpu() };
  return cpuSample.ns;
}

/** Calls sent to an isolate in one round trip, at most (see SandboxInstance.call). */
const MAX_BATCH = 32;

/**
 * How long an ended instance's culprit (the call or launch running when it ended) waits
 * for the isolate's thread to return before it is answered anyway. A built-in that
 * ignores termination (`"a".repeat(6e7).replace(/a/g, "b")`, `String(7n ** 600000n)`)
 * keeps its thread busy for a while after the deadline: until it returns, the tenant
 * keeps the concurrency slot and instance slot it holds, so its CPU stays charged to it
 * and bounded by its own concurrency (THREATS F42).
 */
const STOP_GRACE_MS = 10_000;

/** Resolves once `work` (an apply into the isolate) has settled — its thread returned — or after STOP_GRACE_MS. */
function stopped(work: Promise<unknown> | undefined): Promise<void> {
  if (work === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, STOP_GRACE_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    work.then(done, done);
  });
}

interface QueuedCall {
  method: string;
  argsJson: string;
  limits: CallLimits;
  tag: CallTag | undefined;
  resolve: (resultJson: string) => void;
  reject: (err: unknown) => void;
}

/** The calls in the isolate now; `cur` is the one running (calls before it have their results). */
interface Batch {
  calls: QueuedCall[];
  cur: number;
  cpuBudgetEnd: bigint;
  /** The process's CPU time no later than the batch went in, so no later than any of its calls' start. */
  processCpuAt: bigint;
  wallEnd: number;
  timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (epoch ms). */
  timerAt: number;
  /** The batch's return value, come before messages the guest posted ahead of it; released by #release. */
  held: { after: number; envelope: string } | undefined;
}

/**
 * A bound, running instance: one tenant's app in one isolate, for its whole life (the
 * in-process tier's TierInstance).
 *
 * Calls run one at a time, in order. Calls that arrive while the isolate is busy wait
 * here and go in together, up to MAX_BATCH, as one `batch` apply: one host↔isolate round
 * trip for the group instead of one per call. The round trip is what a call costs the
 * host (isolated-vm's async apply: ~25 µs on the main thread and ~80 µs of CPU in all on
 * the bench machine); under http.call load a round trip carries ~6 calls (README,
 * Benchmarks). Inside the isolate the calls
 * still run strictly one after another, so each platform message belongs to the one
 * call running, and each call has its own CPU and wall budget, started when it starts.
 */
export class SandboxInstance implements TierInstance {
  #methods: readonly string[] = [];
  #s: BlankState;
  #queue: QueuedCall[] = [];
  #batch: Batch | undefined;
  /** Why the host ended the instance (its deadline, a memory breach it saw, or a dispose); set once. */
  #endReason: IsohostError | undefined;
  #ended = false;
  #listeners: ((reason: IsohostError | undefined) => void)[] = [];
  #form: ScriptForm | undefined;
  /** The latest apply into the isolate (a batch, or a reply delivered to it): settles when its thread returns. */
  #inFlight: Promise<unknown> | undefined;

  readonly #onMessage: MessageHandler;
  /** Whether the isolate came from the warm pool. */
  readonly warm: boolean;

  constructor(state: BlankState, onMessage: MessageHandler, warm: boolean) {
    this.#s = state;
    this.#onMessage = onMessage;
    this.warm = warm;
  }

  /** Names of the functions the bundle exports. */
  get methods(): readonly string[] {
    return this.#methods;
  }

  /**
   * Names the instance anew in the one place the name is used here, a catastrophic
   * error's log line: a sandbox's spare instance (process/child-tier.ts) is loaded under
   * the launch before it and taken by the next one.
   */
  relabel(label: string): void {
    this.#s.owner.label = label;
  }

  /** @internal set once by launch. */
  _loaded(form: ScriptForm, names: string[]): void {
    this.#form = form;
    this.#methods = Object.freeze(names);
  }

  get ended(): boolean {
    return this.#ended || this.#s.isolate.isDisposed;
  }

  onEnded(listener: (reason: IsohostError | undefined) => void): void {
    if (this.#ended) listener(this.#endReason);
    else this.#listeners.push(listener);
  }

  /**
   * Calls a method with JSON text args; resolves with the result JSON text. `tag` is
   * handed to the message handler with every platform message the call sends.
   */
  call(method: string, argsJson: string, limits: CallLimits, tag?: CallTag): Promise<string> {
    if (this.ended) return Promise.reject(this.#endReason ?? new IsohostError('not_found', 'the instance has ended'));
    return new Promise<string>((resolve, reject) => {
      this.#queue.push({ method, argsJson, limits, tag, resolve, reject });
      if (this.#batch === undefined) this.#dispatch();
    });
  }

  #dispatch(): void {
    const calls = this.#queue.length <= MAX_BATCH ? this.#queue : this.#queue.splice(0, MAX_BATCH);
    if (calls === this.#queue) this.#queue = [];
    const batch: Batch = { calls, cur: 0, cpuBudgetEnd: 0n, processCpuAt: processCpuBefore(), wallEnd: 0, timer: undefined, timerAt: Infinity, held: undefined };
    this.#batch = batch;
    this.#begin(batch);
    // No isolated-vm `timeout` here: the host timer (#check) enforces each call's budget
    // and ends a runaway by disposing the isolate, which works whatever the guest runs.
    // isolated-vm's timeout would add a timer-thread entry and wake-up per apply (calls/s
    // 16k → 23k without it on one isolate, measured) and does not cover awaited work.
    const options = { arguments: { copy: true }, result: { copy: true, promise: true } } as const;
    let run: Promise<unknown>;
    try {
      if (calls.length === 1) {
        run = this.#s.call.apply(undefined, [calls[0]!.method, calls[0]!.argsJson], options);
      } else {
        const flat: string[] = [];
        for (const c of calls) flat.push(c.method, c.argsJson);
        run = this.#s.batch.apply(undefined, [flat], options);
      }
    } catch (e) {
      run = Promise.reject(e); // e.g. the isolate was disposed under us
    }
    this.#inFlight = run;
    run.then(
      (stamped) => {
        const held = unstamp(stamped);
        if (held === undefined) {
          if (this.#batch === batch) this.#breach(new IsohostError('internal', 'malformed reply from the isolate'));
          return;
        }
        batch.held = held;
        this.#release(batch);
      },
      () => this.#failed(batch),
    );
  }

  /**
   * Takes the batch's return value once every message the guest posted before it has come
   * (host.ts stampResult): isolated-vm can resolve an apply ahead of messages posted
   * during it, and a message that comes after its call has ended is dropped (`_message`),
   * which lost a call's last log lines under load. Until then the batch stays current, its
   * budget timer running: a count that never comes ends the call by its wall limit.
   */
  #release(batch: Batch): void {
    const held = batch.held;
    if (held === undefined || this.#batch !== batch || this.#s.posted < held.after) return;
    batch.held = undefined;
    this.#result(batch, batch.calls.length - 1, held.envelope);
  }

  /**
   * Starts the budget of the batch's current call. One timer per batch watches it: armed
   * for the earliest moment the current call could breach, it re-checks and re-arms, so
   * a call that starts after a quick one only moves the timer if it must fire sooner.
   */
  #begin(batch: Batch): void {
    const c = batch.calls[batch.cur]!;
    const now = Date.now();
    batch.cpuBudgetEnd = chargedCpu(this.#s) + BigInt(c.limits.cpuMs) * 1_000_000n;
    batch.wallEnd = now + c.limits.wallMs;
    c.tag?.started(batch.wallEnd);
    const due = now + Math.max(1, Math.min(c.limits.cpuMs, c.limits.wallMs));
    if (due < batch.timerAt) this.#arm(batch, due - now);
  }

  #arm(batch: Batch, ms: number): void {
    clearTimeout(batch.timer);
    batch.timerAt = Date.now() + ms;
    batch.timer = setTimeout(() => this.#check(batch), ms);
  }

  /** Fires when the current call's CPU budget could first be spent (CPU time never outruns wall time); re-arms with what is left. */
  #check(batch: Batch): void {
    if (this.#batch !== batch || this.ended) return;
    const limits = batch.calls[batch.cur]!.limits;
    const cpuLeft = cpuLeftMs(this.#s, batch.cpuBudgetEnd, limits.cpuMs, batch.processCpuAt);
    const wallLeft = batch.wallEnd - Date.now();
    if (cpuLeft <= 0) return this.#breach(new IsohostError('timeout', `the call used more than its CPU limit of ${limits.cpuMs} ms`));
    if (wallLeft <= 0) return this.#breach(new IsohostError('timeout', `the call ran longer than its wall limit of ${limits.wallMs} ms`));
    this.#arm(batch, Math.max(1, Math.min(cpuLeft, wallLeft)));
  }

  /**
   * The envelope of call `index`: posted by the guest (`$done`) for every call of a batch
   * but the last, which is the apply's result. Results are taken in order only; anything
   * else from the guest is ignored (the batch then ends by its wall budget). The apply's
   * result cannot come ahead of the posted ones: it is held until every message posted
   * before it is in (#release), and the posts arrive in order.
   */
  #result(batch: Batch, index: number, envelope: unknown): void {
    if (this.#batch !== batch || typeof envelope !== 'string' || index !== batch.cur) return;
    const c = batch.calls[batch.cur]!;
    try {
      c.resolve(decodeEnvelope(envelope, this.#form!));
    } catch (err) {
      c.reject(err);
    }
    batch.cur++;
    if (batch.cur === batch.calls.length) return this.#finish(batch);
    this.#begin(batch);
  }

  #finish(batch: Batch): void {
    clearTimeout(batch.timer);
    this.#batch = undefined;
    if (this.#queue.length > 0) this.#dispatch();
  }

  /** Rejects the batch's calls that have no result yet, and every queued call. */
  #rejectAll(batch: Batch | undefined, err: IsohostError): void {
    if (batch !== undefined) {
      clearTimeout(batch.timer);
      for (let i = batch.cur; i < batch.calls.length; i++) batch.calls[i]!.reject(err);
    }
    const queued = this.#queue;
    this.#queue = [];
    for (const c of queued) c.reject(err);
  }

  /**
   * The apply of `batch` rejected. That happens only when the isolate could not finish
   * it: the guest's own errors come back as envelopes. Classified by state, never by the
   * rejection's text (which guest code can choose): the host had ended the instance (its
   * reason stands), or isolated-vm disposed the isolate — which it does only for its
   * memory limit — or something else broke, and the instance ends as `internal`.
   */
  #failed(batch: Batch): void {
    if (this.#batch !== batch || this.#ended) return;
    this.#breach(isolateFailure(this.#s));
  }

  #breach(err: IsohostError): void {
    this.dispose(err);
  }

  /**
   * One message from the guest. `$done` carries a batch result; anything else is a
   * platform op, validated here and handed to the handler with the running call's tag.
   * The reply goes back only while that same call runs: a reply for a call that has
   * ended is dropped, so no guest code runs outside its own call (THREATS B16).
   */
  _message(id: number, op: string, payload: string, bytes: unknown): void {
    this.#handleMessage(id, op, payload, bytes);
    // A return value held for this message (#release) goes out after it was handled as its call's.
    const batch = this.#batch;
    if (batch?.held !== undefined) this.#release(batch);
  }

  #handleMessage(id: number, op: string, payload: string, bytes: unknown): void {
    const batch = this.#batch;
    if (op === DONE_OP) {
      if (batch !== undefined && Number.isSafeInteger(id) && id < batch.calls.length - 1) this.#result(batch, id, payload);
      return;
    }
    const owner = batch?.calls[batch.cur];
    // Id 0 is the prelude's one-way `notify` (host.ts): nothing in the isolate waits for
    // its answer, so none is delivered — an apply into the isolate saved per message
    // (the end-of-call log lines and drop reports of a log flood, THREATS F46).
    const reply = id === ONE_WAY_ID ? noReply : (ok: boolean, json: string, out?: ArrayBuffer) => this.#settle(owner, id, ok, json, out);
    const fail = (e: IsohostError) => reply(false, JSON.stringify({ code: e.code, message: e.message }));
    if (owner === undefined) return;
    if (!Number.isSafeInteger(id) || !OP_RE.test(op) || payload.length > MAX_MESSAGE_CHARS) {
      return fail(new IsohostError('invalid_request', 'malformed platform call'));
    }
    if (bytes !== undefined && !(bytes instanceof ArrayBuffer)) return fail(new IsohostError('invalid_request', 'bytes must be an ArrayBuffer'));
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return fail(new IsohostError('invalid_request', 'platform call payload is not JSON'));
    }
    this.#onMessage(op, parsed, bytes as ArrayBuffer | undefined, owner.tag).then(
      (r) => reply(true, r.json, r.bytes),
      (e) => fail(e instanceof IsohostError ? e : new IsohostError('internal', 'internal error')),
    );
  }

  /** Delivers a binding reply into the isolate, within the remaining CPU budget of the call that sent the op. */
  #settle(owner: QueuedCall | undefined, id: number, ok: boolean, json: string, bytes: ArrayBuffer | undefined): void {
    const batch = this.#batch;
    if (batch === undefined || owner === undefined || batch.calls[batch.cur] !== owner || this.ended) return;
    // Under the call's budget like the rest of it (host timer; no isolated-vm timeout, see #dispatch).
    const delivered = this.#s.settle.apply(undefined, [id, ok, json, bytes], { arguments: { copy: true } });
    this.#inFlight = delivered;
    delivered.catch(() => this.#failed(batch));
  }

  /**
   * Ends the instance; idempotent. Queued calls reject at once with `reason` (default
   * `not_found`); the calls that were in the isolate, and the `onEnded` listeners (which
   * give the tenant's slots back), once its thread has returned (see STOP_GRACE_MS).
   * Disposing never waits on the isolate's thread: isolated-vm only requests termination.
   */
  dispose(reason?: IsohostError): void {
    if (this.#ended) return;
    this.#ended = true;
    const err = (this.#endReason = reason ?? new IsohostError('not_found', 'the instance has ended'));
    if (!this.#s.isolate.isDisposed) this.#s.isolate.dispose();
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch !== undefined) clearTimeout(batch.timer);
    this.#rejectAll(undefined, err);
    void stopped(batch === undefined ? undefined : this.#inFlight).then(() => {
      this.#rejectAll(batch, err);
      const listeners = this.#listeners;
      this.#listeners = [];
      for (const l of listeners) l(err);
    });
  }
}

/** The coded error for an isolate that failed under the host, from state only (see SandboxInstance.#failed). */
function isolateFailure(s: BlankState): IsohostError {
  // A disposed isolate can no longer report its limit: the configured one is kept in the state.
  if (s.isolate.isDisposed) return new IsohostError('resource_exhausted', `the instance exceeded its memory limit of ${s.memoryMb} MB`);
  return new IsohostError('internal', 'the isolate failed');
}

/** `<count>;<envelope>` (host.ts stampResult) → its parts; undefined when it is not that. */
function unstamp(stamped: unknown): { after: number; envelope: string } | undefined {
  if (typeof stamped !== 'string') return undefined;
  const i = stamped.indexOf(';');
  if (i < 1 || i > 16) return undefined;
  const after = Number(stamped.slice(0, i));
  return Number.isSafeInteger(after) && after >= 0 ? { after, envelope: stamped.slice(i + 1) } : undefined;
}

function decodeEnvelope(envelope: unknown, form: ScriptForm): string {
  if (typeof envelope !== 'string' || envelope.length === 0) throw new IsohostError('internal', 'malformed reply from the isolate');
  if (envelope[0] === 'r') return envelope.slice(1);
  let parsed: { code?: unknown; message?: unknown; line?: unknown; col?: unknown };
  try {
    parsed = JSON.parse(envelope.slice(1));
  } catch {
    throw new IsohostError('internal', 'malformed error from the isolate');
  }
  const rawCode = typeof parsed.code === 'string' ? parsed.code : 'miniapp_error';
  const code: ErrorCode = isErrorCode(rawCode) ? rawCode : 'miniapp_error';
  let message = typeof parsed.message === 'string' ? parsed.message.slice(0, 4096) : 'the mini-app failed';
  if (rawCode.startsWith('miniapp_error:')) message = `[${rawCode.slice(14)}] ${message}`;
  const col = typeof parsed.col === 'number' && Number.isInteger(parsed.col) ? parsed.col : 1;
  const line = typeof parsed.line === 'number' && Number.isInteger(parsed.line) ? form.originalLine(parsed.line, col) : undefined;
  // With the bundle's own inline source map, the author's file and line (`src/index.ts:12`).
  const authored = line === undefined ? undefined : form.authoredPosition(parsed.line as number, col);
  if (line !== undefined) message += authored === undefined ? ` (bundle line ${line})` : ` (${authored.file}:${authored.line})`;
  throw new IsohostError(code, message, line === undefined ? undefined : { details: authored === undefined ? { line } : { line, file: authored.file, file_line: authored.line } });
}

/**
 * Script text above which a launch compiles on the isolate's thread even with a code
 * cache: a synchronous compile holds the event loop for about 18 µs per KB (a 4.5 MB
 * bundle: 76–140 ms), an async one costs a thread round trip (~0.1 ms) instead.
 */
const SYNC_COMPILE_MAX_CHARS = 32 * 1024;

function compileCached(isolate: ivm.Isolate, cached: Compiled): ivm.Script | Promise<ivm.Script> {
  const options = { filename: 'app.js', cachedData: cached.cachedData };
  return cached.form.script.length <= SYNC_COMPILE_MAX_CHARS ? isolate.compileScriptSync(cached.form.script, options) : isolate.compileScript(cached.form.script, options);
}

/**
 * First sight of a bundle in this process: V8's module parser decides syntax and
 * imports, esbuild makes the script form (or the host made it: `spec.converted`), and V8
 * compiles it once to produce the code cache — all off the main thread (async
 * isolated-vm compiles run on the isolate's thread, esbuild in its own service).
 */
async function compileFirst(isolate: ivm.Isolate, spec: TierLaunchSpec): Promise<{ form: ScriptForm; script: ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer> } }> {
  let module: ivm.Module;
  try {
    module = await isolate.compileModule(spec.source, { filename: 'app.js' });
  } catch (e) {
    if (isolate.isDisposed) throw e;
    throw new IsohostError('invalid_request', `bundle does not compile: ${e instanceof Error ? e.message : String(e)}`);
  }
  const deps = module.dependencySpecifiers;
  module.release();
  if (deps.length > 0) throw new IsohostError('invalid_request', `bundle must be self-contained; it imports "${deps[0]}"`);
  // The host's conversion when it sent one (a sandbox process: no esbuild there), else esbuild's, made here.
  const form = spec.converted === undefined ? await toScriptForm(spec.source) : formOf(spec.source, spec.converted);
  // `cachedData` is set on the result when produceCachedData is given (isolated-vm README).
  const script: ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer> } = await isolate.compileScript(form.script, { filename: 'app.js', produceCachedData: true });
  if (script.cachedData !== undefined) {
    // Copied once to learn its size: ExternalCopy does not report it (first sight only).
    const cacheBytes = script.cachedData.copy().byteLength;
    remember(spec.sha256, { form, cachedData: script.cachedData, bytes: form.bytes + cacheBytes });
  }
  return { form, script };
}

/**
 * The code cache of a bundle's first sight is made right after compiling, before any of
 * it ran, so it holds only the bytecode V8 compiles eagerly: the wrapper. Every inner
 * function the top-level code and the exports step call (esbuild's export helpers and
 * their getters, the bundle's own set-up code) was then compiled lazily again in every
 * launch: 150–200 µs of the isolate's CPU for the noop bench bundle, most of a warm
 * launch's load step (measured: 200 → 60 µs per launch). Compiling the same source
 * again in the isolate that has just loaded it is a hit in V8's per-isolate compilation
 * cache, and the cache made from that script now holds those functions as well.
 *
 * Runs after a successful first launch, once per bundle per process, on the isolate's
 * thread (an async compile), with the launch's deadline already cancelled: it runs no
 * mini-app code, and its CPU is ours, not the call's. The bytes are V8's serialisation
 * of bytecode it compiled from the bundle's source, as before; guest code cannot write
 * them (THREATS A6). A failure (the isolate ended meanwhile) keeps the first cache.
 */
async function recacheAfterLoad(isolate: ivm.Isolate, sha256: string, form: ScriptForm): Promise<void> {
  try {
    const script: ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer> } = await isolate.compileScript(form.script, { filename: 'app.js', produceCachedData: true });
    script.release();
    if (script.cachedData !== undefined) upgrade(sha256, form, script.cachedData, script.cachedData.copy().byteLength);
  } catch {
    // the instance ended under us; the compile-time cache stays
  }
}

/**
 * Binds a blank isolate to one app of one tenant and evaluates the bundle in it: its
 * top-level code and the exports step run on the isolate's thread, under `spec.cpuMs`
 * and `spec.wallMs` kept by the host (see the file comment). The blank is consumed: it
 * is never bound again, even if launch fails. Rejects with a coded IsohostError.
 */
export async function launch(blank: BlankIsolate, spec: TierLaunchSpec, onMessage: MessageHandler, warm = true): Promise<SandboxInstance> {
  const s = blank._state;
  if (s.used) throw new IsohostError('internal', 'blank isolate reused');
  s.used = true;
  s.owner.label = spec.label;
  const instance = new SandboxInstance(s, onMessage, warm);
  s.onMessage = (id, op, payload, bytes) => instance._message(id, op, payload, bytes);
  let deadline: LaunchDeadline | undefined;
  try {
    // Compiling is not timed: it runs no mini-app code, the bundle's size is bounded
    // before it gets here, and a first sight happens once per bundle per process.
    const cached = recall(spec.sha256);
    const { form, script } = cached ? { form: cached.form, script: await compileCached(s.isolate, cached) } : await compileFirst(s.isolate, spec);
    // Runs no mini-app code: the script only creates the wrapper function (script-form.ts).
    const main = script.runSync(s.context, { reference: true }) as ivm.Reference<unknown>;
    script.release();
    let envelope: unknown;
    try {
      // Platform calls are served only during method calls (SandboxInstance._message), so a
      // top-level `fc.…` is refused rather than left unbounded.
      deadline = new LaunchDeadline(s, spec, instance);
      envelope = await deadline.race(s.load.apply(undefined, [main.derefInto(), spec.metaJson], { result: { copy: true } }));
    } finally {
      main.release();
    }
    if (typeof envelope !== 'string' || envelope.length === 0) throw new IsohostError('invalid_request', 'bundle failed while loading');
    if (envelope[0] !== 'r') {
      try {
        decodeEnvelope(envelope, form);
      } catch (err) {
        const message = err instanceof IsohostError ? err.message : 'the bundle threw';
        throw new IsohostError('invalid_request', `bundle failed while loading: ${message}`);
      }
    }
    const names = JSON.parse(envelope.slice(1)) as unknown;
    if (!Array.isArray(names) || names.length === 0) throw new IsohostError('invalid_request', 'bundle exports no function');
    instance._loaded(form, names.filter((n): n is string => typeof n === 'string'));
    if (cached === undefined) {
      deadline?.cancel();
      await recacheAfterLoad(s.isolate, spec.sha256, form);
    }
    return instance;
  } catch (err) {
    const coded = deadline?.reason ?? (err instanceof IsohostError ? err : loadFailure(s));
    instance.dispose(coded);
    throw coded;
  } finally {
    deadline?.cancel();
  }
}

/** A failure of the launch steps that is not the guest's envelope: classified by state. */
function loadFailure(s: BlankState): IsohostError {
  if (s.isolate.isDisposed) return new IsohostError('resource_exhausted', `the bundle exceeded its memory limit of ${s.memoryMb} MB while loading`);
  return new IsohostError('invalid_request', 'bundle failed while loading');
}

/**
 * The host's deadline for a launch: the isolate's CPU time and the wall clock from now,
 * checked by one timer that re-arms for the earliest moment either could be spent.
 * When one is, it ends the instance (disposing the isolate) and settles the launch at
 * once, without waiting for the isolate's thread to return.
 */
class LaunchDeadline {
  /** Set when the host's deadline fired: the launch failed for time, whatever the isolate reports. */
  reason: IsohostError | undefined;
  readonly #state: BlankState;
  readonly #spec: TierLaunchSpec;
  readonly #instance: SandboxInstance;
  readonly #cpuEnd: bigint;
  readonly #processCpuAt = processCpuBefore();
  readonly #wallEnd: number;
  #timer: NodeJS.Timeout | undefined;
  #fire: ((err: IsohostError) => void) | undefined;
  #work: Promise<unknown> | undefined;

  constructor(state: BlankState, spec: TierLaunchSpec, instance: SandboxInstance) {
    this.#state = state;
    this.#spec = spec;
    this.#instance = instance;
    this.#cpuEnd = chargedCpu(state) + BigInt(spec.cpuMs) * 1_000_000n;
    this.#wallEnd = Date.now() + spec.wallMs;
    this.#arm(Math.max(1, Math.min(spec.cpuMs, spec.wallMs)));
  }

  /** `work`, or the deadline's error once the deadline fired and the isolate's thread returned (see STOP_GRACE_MS). */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.reason) return Promise.reject(this.reason);
    this.#work = work;
    return new Promise<T>((resolve, reject) => {
      this.#fire = reject;
      work.then(resolve, reject);
    });
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#fire = undefined;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
  }

  #check(): void {
    if (this.#instance.ended) return;
    const cpuLeft = cpuLeftMs(this.#state, this.#cpuEnd, this.#spec.cpuMs, this.#processCpuAt);
    const wallLeft = this.#wallEnd - Date.now();
    if (cpuLeft > 0 && wallLeft > 0) return this.#arm(Math.max(1, Math.min(cpuLeft, wallLeft)));
    this.reason = cpuLeft <= 0
      ? new IsohostError('timeout', `the bundle's top-level code ran longer than the CPU limit of ${this.#spec.cpuMs} ms`)
      : new IsohostError('timeout', `the bundle's top-level code ran longer than the wall limit of ${this.#spec.wallMs} ms`);
    const reason = this.reason;
    this.#instance.dispose(reason);
    const fire = this.#fire;
    void stopped(this.#work).then(() => fire?.(reason));
  }
}
