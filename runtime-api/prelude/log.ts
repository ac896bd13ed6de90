/**
 * `fc.log` and `console`, guest side. Every line is fire and forget: logging never
 * fails a call. The limits of log-limits.ts are applied here first, so a flood stops in
 * the isolate instead of crossing line by line into the host; the host binding
 * (src/bindings/log/) enforces them again and, when it drops a line, its reply says why,
 * and this side stops sending for the rest of the call. Lines dropped here are counted
 * and reported once at the end of the call (`log.dropped`), so the host's counter and
 * its one summary line per call include them.
 */
import { notify, request } from './host.ts';
import { ErrorCtor, JSONParse, JSONStringify, ObjectFreeze, promiseThen, StringCtor, stringSlice } from './intrinsics.ts';
import { LOG_CALL_MAX_BYTES, LOG_FIELDS_MAX_CHARS, LOG_MESSAGE_MAX_CHARS, type LogDropReason } from './log-limits.ts';

/** Characters sent during the running call (a lower bound of its UTF-8 bytes). */
let callChars = 0;
let droppedPerCall = 0;
let droppedRate = 0;
/** Set once a line of this call was refused: the rest of the call's lines are dropped here. */
let stoppedBy: LogDropReason | undefined;

/** Called by the prelude when a call starts running. */
export function beginCallLog(): void {
  callChars = 0;
  droppedPerCall = 0;
  droppedRate = 0;
  stoppedBy = undefined;
}

/** Called by the prelude when a call's method has settled, before its result goes out. */
export function endCallLog(): void {
  // Not `request`: a call that filled its in-flight slots with log lines must still report.
  if (droppedPerCall + droppedRate > 0) notify('log.dropped', { call: droppedPerCall, rate: droppedRate });
  beginCallLog();
}

function drop(reason: LogDropReason): void {
  if (reason === 'rate') droppedRate++;
  else droppedPerCall++;
}

function text(value: unknown): string {
  try {
    return StringCtor(value);
  } catch {
    return '[unprintable]';
  }
}

function write(level: string, message: unknown, fields: unknown): void {
  if (stoppedBy !== undefined) return drop(stoppedBy);
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
    stoppedBy = 'call';
    return drop('call');
  }
  callChars += size;
  promiseThen(
    request('log', { level, message: msg, fields: f }),
    (reply) => {
      const dropped = reply.json?.dropped as LogDropReason | undefined;
      // The host dropped (and counted) this line: send no more during this call.
      if (dropped === 'call' || dropped === 'rate') stoppedBy ??= dropped;
    },
    // Refused before it reached the host (too many operations in flight): dropped here.
    () => drop('call'),
  );
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
