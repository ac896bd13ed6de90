/**
 * The guest prelude: evaluated once into the isolate snapshot, before any mini-app
 * code exists. It defines the web globals, then leaves one configurable global,
 * `__isohost`, whose `attach(hostSync, post)` the bridge calls when it creates a
 * context; the bridge deletes `__isohost` right after, so mini-app code never sees it.
 * `attach` returns the control functions the host holds as References:
 * `load(main, metaJson)` (define `fc` for one tenant's app and user, then run the bundle and read its
 * exports), `call(method, argsJson)`, `batch([method, argsJson, …])` and `settle(...)`.
 */
import { codedError, hostSync, installHostPort, postDone, request, settle, stampResult } from './host.ts';
import {
  ArrayIsArray, JSONParse, JSONStringify, MapCtor, mapDelete, mapGet, mapSet, NumberCtor, NumberIsFinite,
  ObjectDefineProperty, ObjectFreeze, ObjectHasOwn, PromiseCtor, promiseThen, ReflectApply, regExpExec, StringCtor, stringSlice,
  TypeErrorCtor,
} from './intrinsics.ts';
import { isJsonRefusal, stringifyChecked } from './json-value.ts';
import { beginCallLog, consoleObj, endCallLog, log } from './log.ts';
import { loadExports } from './exports.ts';
import { fetch as webFetch, installWebGlobals } from './web/index.ts';
import { withholdGlobals } from './withheld.ts';
// append() defines the element instead of [[Set]]: a setter a mini-app put on
// `Array.prototype[i]` never sees the value (THREATS A2).
import { append, mapSize } from './web/saved.ts';

/** CONTRACT §3 limits, checked here first (cheap) and again on the host (authoritative). */
const MAX_KEY_CHARS = 512;
const MAX_VALUE_BYTES = 1024 * 1024;
const MAX_RESULT_CHARS = 16 * 1024 * 1024;
const MAX_TIMERS = 1000;
const MAX_BATCH_OPS = 1000;

let exportsNs: Record<string, unknown> | undefined;

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_CHARS) {
    throw codedError('invalid_request', 'key must be a string of 1..512 UTF-8 bytes');
  }
  return key;
}

function toJsonText(value: unknown, what: string): string {
  // A string's JSON text is at least as long as the string: refuse a huge one before
  // serialising it (a 500 MB value costs nothing to build as a rope, seconds to copy).
  if (typeof value === 'string' && value.length > MAX_VALUE_BYTES) throw tooLargeValue(what);
  let text: string | undefined;
  try {
    // Refuses what JSON would reshape, naming the path inside the value (json-value.ts).
    text = stringifyChecked(value, what, 'stored');
  } catch (err) {
    if (isJsonRefusal(err)) throw err;
    throw codedError('invalid_request', `${what} is not JSON-serializable: ${describe(err)}`);
  }
  if (text === undefined) throw codedError('invalid_request', `${what} is not a JSON value`);
  if (text.length > MAX_VALUE_BYTES) throw tooLargeValue(what);
  return text;
}

function tooLargeValue(what: string): Error {
  return codedError('payload_too_large', `${what} is over the limit of 1 MiB (1048576 bytes)`);
}

function describe(err: unknown): string {
  try {
    if (typeof err === 'object' && err !== null) return StringCtor((err as { message?: unknown }).message);
    return StringCtor(err);
  } catch {
    return 'unprintable error';
  }
}

const asPromise = <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return fn();
  } catch (err) {
    return new PromiseCtor<T>((_, reject) => reject(err));
  }
};

const storage = ObjectFreeze({
  get: (key: string) => asPromise(() => promiseThen(request('storage.get', { key: checkKey(key) }), (r) => r.json.value)),
  set: (key: string, value: unknown) =>
    asPromise(() => promiseThen(request('storage.set', { key: checkKey(key), value: toJsonText(value, 'value') }), () => undefined)),
  delete: (key: string) => asPromise(() => promiseThen(request('storage.delete', { key: checkKey(key) }), () => undefined)),
  list: (options?: { prefix?: string; limit?: number; cursor?: string | null }) =>
    asPromise(() => {
      const o = options ?? {};
      const payload: Record<string, unknown> = {};
      if (o.prefix !== undefined) payload.prefix = o.prefix;
      if (o.limit !== undefined) payload.limit = o.limit;
      if (o.cursor !== undefined && o.cursor !== null) payload.cursor = o.cursor;
      return promiseThen(request('storage.list', payload), (r) => r.json);
    }),
  batch: (ops: unknown[]) =>
    asPromise(() => {
      if (!ArrayIsArray(ops)) throw codedError('invalid_request', 'batch takes an array of operations');
      // Counted first, and read once: a million-op batch is refused before any op is
      // serialised (THREATS B15), and a Proxy cannot grow the array while it is walked.
      const n = ops.length;
      if (!(n <= MAX_BATCH_OPS)) throw codedError('invalid_request', `batch has ${n} ops; the limit is ${MAX_BATCH_OPS}`);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const op = ops[i] as { op?: unknown; key?: unknown; value?: unknown };
        if (op === null || typeof op !== 'object') throw codedError('invalid_request', `batch[${i}] is not an operation`);
        if (op.op === 'set') append(out, { op: 'set', key: checkKey(op.key), value: toJsonText(op.value, `batch[${i}].value`) });
        else if (op.op === 'delete') append(out, { op: 'delete', key: checkKey(op.key) });
        else throw codedError('invalid_request', `batch[${i}].op must be "set" or "delete"`);
      }
      return promiseThen(request('storage.batch', { ops: out }), () => undefined);
    }),
});

// Timers are host sleeps owned by the current call: when the call ends, the host drops
// them, so no guest code runs outside a call's deadline (THREATS B16).
const timers = new MapCtor<number, boolean>();
let nextTimer = 1;
function setTimeoutImpl(fn: unknown, ms?: unknown, ...args: unknown[]): number {
  if (typeof fn !== 'function') throw new TypeErrorCtor('setTimeout expects a function');
  if (mapSize(timers) >= MAX_TIMERS) throw codedError('resource_exhausted', `too many pending timers (limit ${MAX_TIMERS})`);
  const delay = NumberCtor(ms);
  const id = nextTimer++;
  mapSet(timers, id, true);
  promiseThen(
    request('timer', { ms: NumberIsFinite(delay) && delay > 0 ? delay : 0 }),
    () => {
      if (mapGet(timers, id) === undefined) return;
      mapDelete(timers, id);
      try {
        // ReflectApply, not a spread: spreading runs the array iterator a mini-app can replace.
        ReflectApply(fn as (...a: unknown[]) => void, undefined, args);
      } catch (err) {
        log.error('uncaught exception in setTimeout callback: ' + describe(err));
      }
    },
    () => mapDelete(timers, id),
  );
  return id;
}
function clearTimeoutImpl(id: unknown): void {
  mapDelete(timers, NumberCtor(id));
}

function defineGlobal(name: string, value: unknown, locked = false): void {
  ObjectDefineProperty(globalThis, name, { value, writable: !locked, enumerable: false, configurable: !locked });
}

installWebGlobals(globalThis);
defineGlobal('console', consoleObj);
defineGlobal('setTimeout', setTimeoutImpl);
defineGlobal('clearTimeout', clearTimeoutImpl);
defineGlobal('queueMicrotask', (fn: unknown) => {
  if (typeof fn !== 'function') throw new TypeErrorCtor('queueMicrotask expects a function');
  promiseThen(PromiseCtor.resolve(), fn as () => void);
});
defineGlobal('fetch', webFetch);

const LINE_RE = /app\.js:(\d+):(\d+)/;

/** Turns whatever a method threw into `{code, message, line}`. Runs in the isolate, under its deadline. */
function errorEnvelope(err: unknown): string {
  const message = stringSlice(describe(err), 0, 4096);
  let code = 'miniapp_error';
  let line: number | undefined;
  let col: number | undefined;
  try {
    if (typeof err === 'object' && err !== null) {
      const c = (err as { code?: unknown }).code;
      // Limit breaches keep their code; any other platform code is the mini-app's failure.
      if (c === 'resource_exhausted' || c === 'timeout') code = c;
      else if (typeof c === 'string' && c.length < 40) code = 'miniapp_error:' + c;
      const stack = (err as { stack?: unknown }).stack;
      const m = typeof stack === 'string' ? regExpExec(LINE_RE, stack) : null;
      if (m) {
        line = NumberCtor(m[1]);
        col = NumberCtor(m[2]);
      }
    }
  } catch {
    // a hostile getter: keep what we have
  }
  return 'e' + errorJson(code, message, line, col);
}

/**
 * `{"code":…,"message":…[,"line":…,"col":…]}`, built from primitives only. `JSON.stringify`
 * of an object looks up `toJSON` on it, up the prototype chain, so a throwing `toJSON` a
 * mini-app put on Object.prototype would throw out of the envelope meant to report its
 * failure (the call then ended the instance as `internal`); of a string or a number it
 * looks up nothing.
 */
function errorJson(code: string, message: string, line?: number, col?: number): string {
  let out = '{"code":' + JSONStringify(code) + ',"message":' + JSONStringify(message);
  if (line !== undefined) out += ',"line":' + JSONStringify(line);
  if (col !== undefined) out += ',"col":' + JSONStringify(col);
  return out + '}';
}

/** One call: its log budget (log.ts) starts with it and its drop report goes out before its result. */
async function call(method: string, argsJson: string): Promise<string> {
  beginCallLog();
  try {
    return await runMethod(method, argsJson);
  } finally {
    endCallLog();
  }
}

/** One call as the host applies it alone: its envelope, stamped with the messages posted before it (host.ts stampResult). */
function callStamped(method: string, argsJson: string): Promise<string> {
  return promiseThen(call(method, argsJson), stampResult) as Promise<string>;
}

async function runMethod(method: string, argsJson: string): Promise<string> {
  const ns = exportsNs;
  if (ns === undefined || !ObjectHasOwn(ns, method) || typeof ns[method] !== 'function') {
    return 'e' + errorJson('not_found', `the app exports no method "${method}"`);
  }
  try {
    const result = await (ns[method] as (a: unknown) => unknown)(JSONParse(argsJson));
    const tooLarge = 'e' + errorJson('payload_too_large', 'the method result is over the limit of 16 MiB');
    // A huge string is refused before it is serialised (THREATS A7: cheap to build as a rope, costly to copy).
    if (typeof result === 'string' && result.length > MAX_RESULT_CHARS) return tooLarge;
    // The value must survive JSON unchanged (json-value.ts); undefined alone stands for null.
    const text = result === undefined ? 'null' : stringifyChecked(result, 'result', 'returned');
    if (text === undefined) return 'e' + errorJson('miniapp_error', 'the method returned a value that is not JSON');
    if (text.length > MAX_RESULT_CHARS) return tooLarge;
    return 'r' + text;
  } catch (err) {
    return errorEnvelope(err);
  }
}

const BATCH_FAILED = 'e' + errorJson('internal', 'the call envelope failed');

/**
 * Runs the calls the host queued on this instance in one round trip: `flat` is
 * `[method0, args0, method1, args1, …]`. They run strictly one after another — call i+1
 * starts once call i's promise settled — so every platform message belongs to the one
 * call running, as with single calls. Each result but the last is posted as soon as it
 * exists (`postDone`); the last is the return value. The outer promise is resolved with
 * a string only, and chained with the saved `then`: a mini-app's `Promise.prototype.then`
 * never sees the batch's own promises (THREATS A2).
 */
function batch(flat: string[]): Promise<string> {
  const n = flat.length >> 1;
  return new PromiseCtor<string>((resolve) => {
    let i = 0;
    const step = (): void => {
      promiseThen(call(flat[2 * i]!, flat[2 * i + 1]!), next, () => next(BATCH_FAILED));
    };
    const next = (envelope: string): void => {
      if (i === n - 1) return resolve(stampResult(envelope));
      postDone(i, envelope);
      i++;
      step();
    };
    step();
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
    ObjectFreeze(value);
  }
  return value;
}

function bind(metaJson: string): void {
  const meta = JSONParse(metaJson) as { app: { id: string; version: string }; user: unknown };
  const fc = ObjectFreeze({
    app: deepFreeze(meta.app),
    session: ObjectFreeze({ user: deepFreeze(meta.user ?? null) }),
    storage,
    fetch: webFetch,
    log,
  });
  defineGlobal('fc', fc, true);
}

/**
 * Binds the isolate to its app and user (`fc`), then runs the bundle's top-level code and
 * reads its exports (exports.ts), in the one apply the host times. One apply, not a
 * synchronous bind before it: entering the isolate from the host's thread for the bind
 * cost a warm launch ~70 µs of the event loop.
 */
function load(main: () => unknown, metaJson: string): string {
  bind(metaJson);
  const loaded = loadExports(main, errorEnvelope);
  if (loaded.ns !== undefined) exportsNs = loaded.ns;
  return loaded.envelope;
}

ObjectDefineProperty(globalThis, '__isohost', {
  value: ObjectFreeze({
    attach(sync: Parameters<typeof installHostPort>[0], post: Parameters<typeof installHostPort>[1]) {
      installHostPort(sync, post);
      // Per context: V8 installs WebAssembly again in every context made from the snapshot.
      withholdGlobals(globalThis);
      return ObjectFreeze({ load, call: callStamped, batch, settle });
    },
  }),
  writable: false,
  enumerable: false,
  configurable: true,
});
void hostSync;
