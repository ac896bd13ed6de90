/**
 * `fc.log` and `console`, guest side. Every line is fire and forget: logging never
 * fails a call. The limits of log-limits.ts are applied here first, so a flood stops in
 * the isolate instead of crossing into the host; the host binding (src/bindings/log/)
 * enforces them again and, when it drops a line, its reply says why, and this side stops
 * sending for the rest of the call (for the tenant rate, until the reply's `retry_ms`
 * has passed, across calls). Lines dropped here are counted and reported once at the end
 * of the call (`log.dropped`), so the host's counter and its one summary line per call
 * include them.
 *
 * Lines cross in batches: a line is buffered, and a microtask sends what one synchronous
 * stretch wrote as one `log` message (LOG_BATCH_MAX_LINES / LOG_BATCH_MAX_CHARS at most),
 * one batch in flight per instance; the next goes when its reply comes. Each line sent
 * as its own message cost the host's event loop a message and a reply into the isolate
 * per line: a tenant logging 256 lines per call held the main thread for its neighbours
 * (bench neighbour.p99_ratio.log-flood). When the call ends, what is still buffered goes
 * out at once as one-way messages, ahead of the call's result.
 */
import { type HostReply, notify, request } from './host.ts';
import {
  arraySlice, DateNow, ErrorCtor, JSONParse, JSONStringify, MathMin, NumberIsFinite, ObjectDefineProperty, ObjectFreeze,
  PromiseResolve, promiseThen, StringCtor, stringSlice,
} from './intrinsics.ts';
import {
  LOG_BATCH_MAX_CHARS, LOG_BATCH_MAX_LINES, LOG_CALL_MAX_BYTES, LOG_FIELDS_MAX_CHARS, LOG_MESSAGE_MAX_CHARS,
  LOG_MESSAGE_MAX_LINES, LOG_RATE_RETRY_MAX_MS, type LogDropReason, type LogReply,
} from './log-limits.ts';

/** One buffered line, as the host's `log` op takes it (`fields` absent when undefined). */
interface Line {
  level: string;
  message: string;
  fields: unknown;
}

/** Characters written during the running call (a lower bound of its UTF-8 bytes). */
let callChars = 0;
let droppedPerCall = 0;
let droppedRate = 0;
/** Set once a line of this call was refused: the rest of the call's lines are dropped here. */
let stoppedBy: LogDropReason | undefined;
/** Epoch ms until which this instance drops lines itself: the host's last `rate` reply said so. Outlives calls. */
let rateUntil = 0;
/** Lines written and not sent yet, oldest first from `head`, with their characters in `sizes`. */
let buffered: Line[] = [];
let sizes: number[] = [];
let head = 0;
/** A microtask that sends the next batch is queued. */
let flushQueued = false;
/** A batch was sent and its reply has not come. */
let batchInFlight = false;
/** Counts calls: a reply or flush left over from an earlier call changes nothing. */
let callGen = 0;
/** Resolved once, on first use: flushes are chained on it with the saved `then`, never the guest's `Promise`. */
let resolved: Promise<void> | undefined;

/** Called by the prelude when a call starts running. */
export function beginCallLog(): void {
  callGen++;
  callChars = 0;
  droppedPerCall = 0;
  droppedRate = 0;
  stoppedBy = undefined;
  buffered = [];
  sizes = [];
  head = 0;
  flushQueued = false;
  batchInFlight = false;
}

/**
 * Called by the prelude when a call's method has settled, before its result goes out.
 * What is still buffered goes out now, then the drop report. Not `request`: ops are
 * served only while the call runs, and a reply would come after it; one-way messages
 * sent before the result are handled before it, in order, and take no in-flight slot
 * (a call that filled its slots must still report).
 */
export function endCallLog(): void {
  try {
    while (head < buffered.length) {
      const end = MathMin(buffered.length, head + LOG_MESSAGE_MAX_LINES);
      notify('log', { lines: arraySlice(buffered, head, end) });
      head = end;
    }
  } catch {
    // Only a mini-app that broke the built-ins its own lines pass through gets here; they are counted.
    drop('call', buffered.length - head);
  }
  try {
    if (droppedPerCall + droppedRate > 0) notify('log.dropped', { call: droppedPerCall, rate: droppedRate });
  } catch {
    // The same mini-app: its report is lost, its call still returns.
  }
  beginCallLog();
}

function drop(reason: LogDropReason, lines: number): void {
  if (reason === 'rate') droppedRate += lines;
  else droppedPerCall += lines;
}

/** Drops every buffered line, counted as `reason`. */
function dropBuffered(reason: LogDropReason): void {
  drop(reason, buffered.length - head);
  buffered = [];
  sizes = [];
  head = 0;
}

function scheduleFlush(): void {
  if (flushQueued || batchInFlight) return;
  flushQueued = true;
  const gen = callGen;
  resolved ??= PromiseResolve();
  promiseThen(resolved, () => {
    if (gen !== callGen) return;
    flushQueued = false;
    sendBatch();
  });
}

/** Sends the oldest buffered lines, up to one batch, and waits for the reply before the next. */
function sendBatch(): void {
  if (head >= buffered.length) return;
  let end = head;
  let chars = 0;
  while (end < buffered.length && end - head < LOG_BATCH_MAX_LINES) {
    const size = sizes[end]!;
    if (end > head && chars + size > LOG_BATCH_MAX_CHARS) break;
    chars += size;
    end++;
  }
  const lines = arraySlice(buffered, head, end);
  if (end === buffered.length) {
    buffered = [];
    sizes = [];
    head = 0;
  } else head = end;
  let sending: Promise<HostReply>;
  try {
    sending = request('log', { lines });
  } catch {
    // Only a mini-app that broke the built-ins its own lines pass through gets here (a throwing toJSON): counted.
    return drop('call', lines.length);
  }
  batchInFlight = true;
  const gen = callGen;
  promiseThen(
    sending,
    (reply) => {
      const r = reply.json as LogReply | undefined;
      const dropped = r?.dropped;
      // The tenant's rate outlives the call: a reply that comes after its call ended still sets the back-off.
      if (dropped === 'rate') backOff(r!.retry_ms);
      if (gen !== callGen) return;
      batchInFlight = false;
      if (dropped === 'call' || dropped === 'rate') refused(dropped);
      else scheduleFlush();
    },
    // Refused before it reached the host (too many operations in flight): dropped here.
    () => {
      if (gen !== callGen) return;
      batchInFlight = false;
      drop('call', lines.length);
      scheduleFlush();
    },
  );
}

/** The host dropped (and counted) a line of the batch and the rest of it: send no more during this call. */
function refused(reason: LogDropReason): void {
  stoppedBy ??= reason;
  dropBuffered(reason);
}

/** The tenant's buckets are empty for `retryMs` (the host's word, capped): lines are dropped here until then. */
function backOff(retryMs: unknown): void {
  if (typeof retryMs === 'number' && NumberIsFinite(retryMs) && retryMs > 0) rateUntil = DateNow() + MathMin(retryMs, LOG_RATE_RETRY_MAX_MS);
}

function text(value: unknown): string {
  try {
    return StringCtor(value);
  } catch {
    return '[unprintable]';
  }
}

function write(level: string, message: unknown, fields: unknown): void {
  if (stoppedBy !== undefined) return drop(stoppedBy, 1);
  if (rateUntil !== 0) {
    // The tenant's buckets are empty: the host would refuse the line.
    if (DateNow() < rateUntil) return drop('rate', 1);
    rateUntil = 0;
  }
  let msg = text(message);
  if (msg.length > LOG_MESSAGE_MAX_CHARS) msg = stringSlice(msg, 0, LOG_MESSAGE_MAX_CHARS);
  let f: unknown;
  let fieldsChars = 0;
  if (fields !== undefined) {
    let json: string | undefined;
    try {
      json = JSONStringify(fields);
    } catch {
      json = '{"unserializable":true}';
    }
    if (json === undefined) json = 'null';
    if (json.length > LOG_FIELDS_MAX_CHARS) json = '{"truncated":true}';
    f = JSONParse(json);
    fieldsChars = json.length;
  }
  const size = msg.length + fieldsChars;
  if (callChars + size > LOG_CALL_MAX_BYTES) {
    // The lines already buffered fit the budget and still go out.
    stoppedBy = 'call';
    return drop('call', 1);
  }
  callChars += size;
  append(buffered, { level, message: msg, fields: f });
  append(sizes, size);
  scheduleFlush();
}

/**
 * Adds `value` at the end of `list` by defining the element: `push` assigns it, which
 * runs a setter a mini-app put on `Array.prototype[n]` (THREATS A2); `slice` defines
 * its elements too.
 */
function append<T>(list: T[], value: T): void {
  ObjectDefineProperty(list, list.length, { __proto__: null, value, writable: true, enumerable: true, configurable: true } as PropertyDescriptor);
}

function logFn(level: string) {
  return (message: unknown, fields?: unknown): void => write(level, message, fields);
}

/** `fc.log`. */
export const log = ObjectFreeze({ debug: logFn('debug'), info: logFn('info'), warn: logFn('warn'), error: logFn('error') });

function formatArgs(args: unknown[]): string {
  let out = '';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let s: string;
    if (typeof a === 'string') s = a;
    else {
      try {
        s = typeof a === 'object' && a !== null && !(a instanceof ErrorCtor) ? (JSONStringify(a) ?? StringCtor(a)) : StringCtor(a);
      } catch {
        s = '[unprintable]';
      }
    }
    out += i === 0 ? s : ' ' + s;
    // Past the line limit the rest would be cut anyway: stop formatting (a huge console.log(...args) costs nothing more).
    if (out.length > LOG_MESSAGE_MAX_CHARS) break;
  }
  return out;
}

/** `console`: every method writes one `fc.log` line. */
export const consoleObj = ObjectFreeze({
  log: (...a: unknown[]) => log.info(formatArgs(a)),
  info: (...a: unknown[]) => log.info(formatArgs(a)),
  debug: (...a: unknown[]) => log.debug(formatArgs(a)),
  warn: (...a: unknown[]) => log.warn(formatArgs(a)),
  error: (...a: unknown[]) => log.error(formatArgs(a)),
});
