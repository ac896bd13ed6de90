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
 * out at once as one-way messages, ahead of the call's result — but no more of them than
 * the tenant's buckets can take by this instance's reckoning: what the host's last reply
 * to a batch of this instance said they held (`budget`), plus what they refilled since
 * at the tenant's rate, less what this instance sent one-way since. The rest is dropped
 * here, counted as `rate`. Without that bound, a flooding call sent its whole 256 KiB at
 * its end however empty the buckets were, and the host parsed it all only to drop it:
 * 12 MB/s of one tenant's log text crossed into the host's event loop during the bench's
 * log flood, where the buckets let 1 MiB/s through. The reckoning is an estimate (other
 * instances of the tenant spend the same buckets); the host's count is the authority.
 */
import { type HostReply, notify, request } from './host.ts';
import {
  arraySlice, DateNow, ErrorCtor, JSONParse, JSONStringify, MathMax, MathMin, NumberIsFinite, ObjectDefineProperty, ObjectFreeze,
  PromiseResolve, promiseThen, StringCtor, stringSlice,
} from './intrinsics.ts';
import {
  LOG_BATCH_MAX_CHARS, LOG_BATCH_MAX_LINES, LOG_CALL_MAX_BYTES, LOG_FIELDS_MAX_CHARS, LOG_MESSAGE_MAX_CHARS,
  LOG_MESSAGE_MAX_LINES, LOG_RATE_RETRY_MAX_MS, LOG_TENANT_BYTES_BURST, LOG_TENANT_BYTES_PER_SEC, LOG_TENANT_LINES_BURST,
  LOG_TENANT_LINES_PER_SEC, type LogDropReason, type LogReply,
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
/**
 * The tenant's buckets as this instance reckons them (lines, characters) at `budgetAt`
 * (epoch ms; 0: no reply has said yet, nothing is bounded). Outlive calls.
 */
let budgetLines = 0;
let budgetChars = 0;
let budgetAt = 0;
/**
 * Lines and characters this instance has sent in all (batches and call ends). A reply
 * tells the buckets as they were right after its batch: what was sent after that batch
 * is taken off what it says (a flooding call's end goes out before its first batch's
 * reply comes).
 */
let sentLines = 0;
let sentChars = 0;

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
 * sent before the result are handled before it, in order (the host holds the result until
 * every message posted before it has come: host.ts stampResult), and take no in-flight slot
 * (a call that filled its slots must still report).
 */
export function endCallLog(): void {
  const last = withinBudget();
  if (last < buffered.length) drop('rate', buffered.length - last);
  try {
    while (head < last) {
      const end = MathMin(last, head + LOG_MESSAGE_MAX_LINES);
      notify('log', { lines: arraySlice(buffered, head, end) });
      head = end;
    }
  } catch {
    // Only a mini-app that broke the built-ins its own lines pass through gets here; they are counted.
    drop('call', last - head);
  }
  try {
    if (droppedPerCall + droppedRate > 0) notify('log.dropped', { call: droppedPerCall, rate: droppedRate });
  } catch {
    // The same mini-app: its report is lost, its call still returns.
  }
  beginCallLog();
}

/** Brings the reckoning of the tenant's buckets up to now: what they refilled since. */
function refillBudget(): void {
  const now = DateNow();
  const s = MathMax(0, now - budgetAt) / 1000;
  budgetLines = MathMin(LOG_TENANT_LINES_BURST, budgetLines + s * LOG_TENANT_LINES_PER_SEC);
  budgetChars = MathMin(LOG_TENANT_BYTES_BURST, budgetChars + s * LOG_TENANT_BYTES_PER_SEC);
  budgetAt = now;
}

/**
 * The end of the buffered lines that the tenant's buckets can take by this instance's
 * reckoning (see the file comment), which it then spends. All of them while no reply has
 * said what the buckets hold.
 */
function withinBudget(): number {
  const bounded = budgetAt !== 0;
  if (bounded) refillBudget();
  let end = head;
  while (end < buffered.length) {
    const size = sizes[end]!;
    if (bounded) {
      if (budgetLines < 1 || size > budgetChars) break;
      budgetLines -= 1;
      budgetChars -= size;
    }
    sentLines += 1;
    sentChars += size;
    end++;
  }
  return end;
}

/** A batch of `lines` lines and `chars` characters went to the host: the reckoning spends them until its reply says anew. */
function spendBudget(lines: number, chars: number): void {
  sentLines += lines;
  sentChars += chars;
  if (budgetAt === 0) return;
  refillBudget();
  budgetLines = MathMax(0, budgetLines - lines);
  budgetChars = MathMax(0, budgetChars - chars);
}

/**
 * Notes what a reply says the tenant's buckets held right after its batch, less what this
 * instance sent since (`linesAt`/`charsAt`: its totals once that batch was sent). A reply
 * without it changes nothing.
 */
function noteBudget(budget: unknown, linesAt: number, charsAt: number): void {
  if (budget === null || typeof budget !== 'object') return;
  const lines = (budget as { lines?: unknown }).lines;
  const bytes = (budget as { bytes?: unknown }).bytes;
  if (typeof lines !== 'number' || typeof bytes !== 'number' || !(lines >= 0) || !(bytes >= 0)) return;
  setBudget(lines - (sentLines - linesAt), bytes - (sentChars - charsAt));
}

/** The reckoning of the tenant's buckets, as of now. */
function setBudget(lines: number, chars: number): void {
  budgetLines = MathMax(0, lines);
  budgetChars = MathMax(0, chars);
  budgetAt = DateNow();
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
  spendBudget(lines.length, chars);
  const linesAt = sentLines;
  const charsAt = sentChars;
  const gen = callGen;
  promiseThen(
    sending,
    (reply) => {
      const r = reply.json as LogReply | undefined;
      const dropped = r?.dropped;
      // The tenant's rate outlives the call: a reply that comes after its call ended still sets the back-off, or the budget.
      if (dropped === 'rate') {
        backOff(r!.retry_ms);
        // The buckets could not take a line: they are as good as empty now.
        setBudget(0, 0);
      } else if (dropped === undefined) noteBudget(r?.budget, linesAt, charsAt);
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
