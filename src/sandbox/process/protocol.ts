/**
 * The wire protocol between the host and one sandbox process (issue 10, the process
 * tier). Messages travel over the child's fd-3 socket as length-prefixed `v8.serialize`
 * frames (frame-channel.ts), so ArrayBuffers of fetch bodies cross as they are; every
 * field is plain data.
 *
 * Trust runs one way. The host is trusted by the child. The child runs hostile code and
 * is NOT trusted: `parseChildMessage` checks every message from it field by field
 * (types, integer ids, string sizes, known error codes) before the host acts on it, and
 * anything else is dropped and counted as a protocol violation. Guest payloads cross as
 * JSON text, never as structured-clone objects, so what reaches a binding is exactly
 * what `JSON.parse` makes of a string, as in the shared tier.
 *
 * Ids: the host numbers launches and calls (one counter per process); the child numbers
 * platform ops. An instance is known by the id of the launch that created it.
 */
import { isErrorCode, type ErrorCode } from '../../errors.ts';
import type { Conversion } from '../script-form.ts';
import type { TierLaunchSpec } from '../tier.ts';

/** Longest JSON text accepted from the child in one field (args/results are bounded far lower upstream). */
export const MAX_JSON_CHARS = 16 * 1024 * 1024;
/** Longest error message kept from the child. */
export const MAX_MESSAGE_CHARS = 4096;
/** Most method names a launch may report, and the longest name. */
const MAX_METHODS = 4096;
const MAX_METHOD_CHARS = 1024;
/** Longest `bytes` buffer the child may send with one op (fetch request bodies are far smaller). */
export const MAX_OP_BYTES = 64 * 1024 * 1024;
/**
 * Largest frame accepted from the child: an op with the most bytes and payload text
 * (two bytes a char at worst), plus room for the other fields. A longer length prefix
 * is a protocol violation, refused before anything is allocated for it.
 */
export const MAX_CHILD_FRAME_BYTES = MAX_OP_BYTES + 2 * MAX_JSON_CHARS + 1024 * 1024;
/** Op names as the bridge accepts them (bridge.ts OP_RE). */
const OP_RE = /^[a-z][a-z0-9.]{0,40}$/;

/** A coded failure as it crosses: the code is checked against src/errors.ts's table. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

// ---- host → child -----------------------------------------------------------------

/**
 * A launch spec as it crosses: `source` and `converted` are left out when the child
 * already holds the bundle by its sha256 (source-cache.ts).
 */
export type WireLaunchSpec = Omit<TierLaunchSpec, 'source' | 'converted'> & { readonly source?: string; readonly converted?: Conversion };

export type HostMessage =
  | { t: 'launch'; id: number; spec: WireLaunchSpec }
  | { t: 'call'; id: number; instance: number; method: string; args: string; cpuMs: number; wallMs: number }
  | { t: 'dispose'; instance: number }
  | { t: 'reply'; id: number; ok: true; json: string; bytes?: ArrayBuffer }
  | { t: 'reply'; id: number; ok: false; error: WireError }
  | { t: 'ping'; id: number };

// ---- child → host -----------------------------------------------------------------

export type ChildMessage =
  /** Sent once, when the child has dropped privileges and its warm pool is filling. */
  | { t: 'ready'; uid: number; gid: number }
  /** `warm`: the isolate came from the child's warm pool. */
  | { t: 'launched'; id: number; methods: string[]; warm: boolean }
  | { t: 'launch_failed'; id: number; error: WireError }
  /** The launch came without its source and the child does not hold it: send it again with the source. */
  | { t: 'need_source'; id: number }
  | { t: 'result'; id: number; json: string }
  /** `ended`: the instance is gone (a limit breach disposed its isolate). */
  | { t: 'call_failed'; id: number; error: WireError; ended: boolean }
  /** A platform op of call `call`; `wallEnd` is when that call's wall budget ends (epoch ms). */
  | { t: 'op'; id: number; call: number; wallEnd: number; op: string; payload: string; bytes?: ArrayBuffer }
  | { t: 'pong'; id: number };

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

function wireError(v: unknown): WireError | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { code, message } = v as Record<string, unknown>;
  if (!isErrorCode(code) || typeof message !== 'string') return undefined;
  return { code, message: message.slice(0, MAX_MESSAGE_CHARS) };
}

function methodList(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length > MAX_METHODS) return undefined;
  for (const m of v) if (!isText(m, MAX_METHOD_CHARS) || m.length === 0) return undefined;
  return [...(v as string[])];
}

/**
 * Checks one message from the (untrusted) child. Returns a fresh object holding only
 * the checked fields, or undefined when anything about it is off.
 */
export function parseChildMessage(raw: unknown): ChildMessage | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m.t) {
    case 'ready':
      return isId(m.uid) && isId(m.gid) ? { t: 'ready', uid: m.uid, gid: m.gid } : undefined;
    case 'launched': {
      const methods = methodList(m.methods);
      return isId(m.id) && methods !== undefined && typeof m.warm === 'boolean' ? { t: 'launched', id: m.id, methods, warm: m.warm } : undefined;
    }
    case 'launch_failed': {
      const error = wireError(m.error);
      return isId(m.id) && error ? { t: 'launch_failed', id: m.id, error } : undefined;
    }
    case 'need_source':
      return isId(m.id) ? { t: 'need_source', id: m.id } : undefined;
    case 'result':
      return isId(m.id) && isText(m.json, MAX_JSON_CHARS) ? { t: 'result', id: m.id, json: m.json } : undefined;
    case 'call_failed': {
      const error = wireError(m.error);
      return isId(m.id) && error && typeof m.ended === 'boolean' ? { t: 'call_failed', id: m.id, error, ended: m.ended } : undefined;
    }
    case 'op': {
      if (!isId(m.id) || !isId(m.call) || typeof m.wallEnd !== 'number' || !Number.isFinite(m.wallEnd)) return undefined;
      if (typeof m.op !== 'string' || !OP_RE.test(m.op) || !isText(m.payload, MAX_JSON_CHARS)) return undefined;
      if (m.bytes !== undefined && !(m.bytes instanceof ArrayBuffer && m.bytes.byteLength <= MAX_OP_BYTES)) return undefined;
      const out: ChildMessage = { t: 'op', id: m.id, call: m.call, wallEnd: m.wallEnd, op: m.op, payload: m.payload };
      if (m.bytes !== undefined) out.bytes = m.bytes as ArrayBuffer;
      return out;
    }
    case 'pong':
      return isId(m.id) ? { t: 'pong', id: m.id } : undefined;
    default:
      return undefined;
  }
}

/**
 * Checks one message from the host, in the child. The host is trusted; this only
 * guards against a bug turning into undefined behaviour in the child.
 */
export function parseHostMessage(raw: unknown): HostMessage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m.t) {
    case 'launch':
      return isId(m.id) && typeof m.spec === 'object' && m.spec !== null && ['string', 'undefined'].includes(typeof (m.spec as Record<string, unknown>).source) ? (m as unknown as HostMessage) : undefined;
    case 'call':
      return isId(m.id) && isId(m.instance) && typeof m.method === 'string' && typeof m.args === 'string' && isId(m.cpuMs) && isId(m.wallMs) ? (m as unknown as HostMessage) : undefined;
    case 'dispose':
      return isId(m.instance) ? (m as unknown as HostMessage) : undefined;
    case 'reply':
      return isId(m.id) && typeof m.ok === 'boolean' ? (m as unknown as HostMessage) : undefined;
    case 'ping':
      return isId(m.id) ? (m as unknown as HostMessage) : undefined;
    default:
      return undefined;
  }
}
