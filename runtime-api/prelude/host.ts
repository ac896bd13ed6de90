/**
 * The guest's end of the message-shaped seam to the host. Two primitives, installed
 * once per isolate by `attach()` and then unreachable from mini-app code (they live
 * only in this module's closure):
 *
 * - `hostSync(op, payloadJson)`: a synchronous, tenant-free platform utility (URL
 *   parsing with Node's WHATWG parser, random bytes). Returns JSON text
 *   `{"ok":…}` / `{"error":{code,message}}`, or an ArrayBuffer for byte results.
 * - `request(op, payload, bytes?)`: an asynchronous, tenant-bound binding op
 *   (storage, fetch, timers, log). The guest posts `(id, op, payloadJson, bytes)`;
 *   the host later settles `id` through `settle()`.
 */
import {
  ErrorCtor, JSONParse, JSONStringify, MapCtor, mapDelete, mapGet, mapSet, ObjectDefineProperty,
  PromiseCtor, TypeErrorCtor,
} from './intrinsics.ts';

type SyncFn = (op: string, payload: string) => unknown;
type PostFn = (id: number, op: string, payload: string, bytes: ArrayBuffer | undefined) => void;

let syncFn: SyncFn | undefined;
let postFn: PostFn | undefined;
/** Messages posted to the host so far (every kind); a call's result carries the count (see stampResult). */
let posted = 0;

/** Posts one message, counted once it is on its way (a post that throws never reaches the host, so it must not be waited for). */
function postCounted(id: number, op: string, payload: string, bytes: ArrayBuffer | undefined): void {
  postFn!(id, op, payload, bytes);
  posted++;
}

/**
 * Prefixes the result envelope of the call (or batch) an apply returns with the number
 * of messages posted before it: `<count>;<envelope>`. isolated-vm does not keep a posted
 * message ahead of that result. The apply's promise can be resolved on the host before
 * the messages the guest posted after the apply's first part returned (when the host ran
 * that part late, the isolate's promise had settled by then), so the host holds the
 * result until it has received that many messages (bridge.ts): the call's last log
 * lines, posted right before it ends, are handled as the call's, before its answer.
 */
export function stampResult(envelope: string): string {
  return posted + ';' + envelope;
}
let nextId = 1;
let inflight = 0;
/** Pending async ops; bounded so a million un-awaited calls cannot grow it (THREATS B14). */
export const MAX_INFLIGHT = 256;
const pending = new MapCtor<number, { resolve: (v: HostReply) => void; reject: (e: unknown) => void }>();

export interface HostReply {
  json: any;
  bytes: ArrayBuffer | undefined;
}

/** Builds the error a guest sees: a real Error (or TypeError for bad input) carrying `code`. */
export function codedError(code: string, message: string): Error {
  const err = code === 'invalid_request' || code === 'payload_too_large' ? new TypeErrorCtor(message) : new ErrorCtor(message);
  // `__proto__: null`: a mini-app's `Object.prototype.get` must not turn this descriptor into an accessor.
  ObjectDefineProperty(err, 'code', { __proto__: null, value: code, enumerable: true, configurable: true, writable: true } as PropertyDescriptor);
  return err;
}

export function installHostPort(sync: SyncFn, post: PostFn): void {
  if (syncFn !== undefined) throw new TypeErrorCtor('host port already attached');
  syncFn = sync;
  postFn = post;
}

/**
 * The longest message text (UTF-16 units) sent to the host. The bridge refuses longer
 * ones too, but only after isolated-vm has copied them into the host's heap; checking
 * here refuses them before anything crosses (THREATS B15).
 */
export const MAX_MESSAGE_CHARS = 16 * 1024 * 1024;

function tooLarge(): Error {
  return codedError('payload_too_large', `platform call is over the limit of ${MAX_MESSAGE_CHARS} characters`);
}

/**
 * The longest payload of a synchronous utility call. Those run on the host's event loop
 * while this isolate waits, so their input is kept small before it crosses (the host
 * bounds each op again: src/sandbox/host-utilities.ts, THREATS F43).
 */
export const MAX_SYNC_CHARS = 64 * 1024;

/** Calls a synchronous platform utility; throws a coded error on `{error}`. */
export function hostSync(op: string, payload: unknown): any {
  const text = JSONStringify(payload);
  if (text.length > MAX_SYNC_CHARS) throw codedError('invalid_request', `${op}: the input is longer than isohost's limit of ${MAX_SYNC_CHARS} characters for this operation`);
  const out = syncFn!(op, text);
  if (typeof out !== 'string') return out;
  const parsed = JSONParse(out);
  if (parsed.error !== undefined) throw codedError(parsed.error.code, parsed.error.message);
  return parsed.ok;
}

/** Sends one async op to the host bindings. Rejects with `resource_exhausted` past MAX_INFLIGHT. */
export function request(op: string, payload: unknown, bytes?: ArrayBuffer): Promise<HostReply> {
  if (inflight >= MAX_INFLIGHT) {
    return new PromiseCtor((_, reject) => reject(codedError('resource_exhausted', `too many fc operations in flight (limit ${MAX_INFLIGHT})`)));
  }
  const text = JSONStringify(payload);
  if (text.length > MAX_MESSAGE_CHARS) return new PromiseCtor((_, reject) => reject(tooLarge()));
  const id = nextId++;
  return new PromiseCtor<HostReply>((resolve, reject) => {
    mapSet(pending, id, { resolve, reject });
    inflight++;
    postCounted(id, op, text, bytes);
  });
}

/**
 * Posts a one-way message for the running call: no reply is awaited and it takes no
 * in-flight slot (id 0 is never pending, so `settle` ignores the host's reply). For
 * reports that must go out even when the in-flight slots are full (log.ts).
 */
export function notify(op: string, payload: unknown): void {
  postCounted(0, op, JSONStringify(payload), undefined);
}

/**
 * Hands the host the result of call `index` of a batch before the batch ends (the last
 * call's result is the batch's return value). `$done` cannot be a binding op name: the
 * bridge's op names start with a letter.
 */
export function postDone(index: number, envelope: string): void {
  postCounted(index, '$done', envelope, undefined);
}

/** Called by the host (through a Reference the bridge holds) to settle one op. */
export function settle(id: number, ok: boolean, json: string, bytes: ArrayBuffer | undefined): void {
  const entry = mapGet(pending, id);
  if (entry === undefined) return;
  mapDelete(pending, id);
  inflight--;
  if (ok) {
    entry.resolve({ json: json === '' ? undefined : JSONParse(json), bytes });
  } else {
    const e = JSONParse(json);
    entry.reject(codedError(e.code, e.message));
  }
}
