/**
 * The application/x-www-form-urlencoded parser and serializer
 * (https://url.spec.whatwg.org/#application/x-www-form-urlencoded), in the isolate.
 *
 * Why not Node's on the host, as before: a synchronous host call runs on the host's
 * event loop, and Node's parser is quadratic in the number of pairs —
 * `new URLSearchParams("a&".repeat(524288))` held the event loop of every tenant for
 * ~0.9 s while the guest's own CPU stayed under 50 ms (THREATS F43). Here the work is
 * linear and runs on the isolate's thread, under the call's own CPU budget.
 *
 * Strings are walked with saved intrinsics only (`String.prototype.split`/`replace`
 * consult symbols a mini-app can define on `String.prototype`).
 */
import { ArrayFrom, StringFromCharCode, stringCharCodeAt, stringSlice, typedArrayBuffer, typedArrayByteLength, Uint8ArrayCtor } from '../intrinsics.ts';
import { append } from './saved.ts';
import { utf8Decode, utf8Encode } from './text-encoding.ts';
import type { Pair } from './webidl.ts';

const AMP = 0x26;
const EQ = 0x3d;
const PLUS = 0x2b;
const PERCENT = 0x25;

/** Parses a query (one leading `?` is dropped, as URLSearchParams' constructor does) into name/value pairs. */
export function parseUrlencoded(input: string): Pair[] {
  const n = input.length;
  let start = n > 0 && stringCharCodeAt(input, 0) === 0x3f ? 1 : 0;
  // Sized first, so pairs are stored into own elements: a plain `out[i] = …` then never
  // reaches a setter on Array.prototype, and no per-element defineProperty is needed.
  let sequences = 1;
  for (let i = start; i < n; i++) if (stringCharCodeAt(input, i) === AMP) sequences++;
  const out = ArrayFrom(sized(sequences)) as unknown as Pair[];
  let count = 0;
  while (start <= n) {
    let end = start;
    let eq = -1;
    let special = false;
    for (; end < n; end++) {
      const c = stringCharCodeAt(input, end);
      if (c === AMP) break;
      if (c === EQ && eq < 0) eq = end;
      else if (c === PLUS || c === PERCENT) special = true;
    }
    if (end > start) {
      const name = eq < 0 ? stringSlice(input, start, end) : stringSlice(input, start, eq);
      const value = eq < 0 ? '' : stringSlice(input, eq + 1, end);
      out[count++] = special ? [decode(name), decode(value)] : [name, value];
    }
    start = end + 1;
  }
  out.length = count;
  return out;
}

/** An array-like of `length` for ArrayFrom, with no prototype to look an iterator up on. */
function sized(length: number): ArrayLike<undefined> {
  return { __proto__: null, length } as unknown as ArrayLike<undefined>;
}

/** `+` to space, then percent-decoding of the UTF-8 bytes and "UTF-8 decode without BOM". */
function decode(s: string): string {
  const n = s.length;
  let plain = true;
  for (let i = 0; i < n && plain; i++) {
    const c = stringCharCodeAt(s, i);
    if (c === PLUS || c === PERCENT) plain = false;
  }
  if (plain) return s;
  let ascii = true;
  for (let i = 0; i < n && ascii; i++) if (stringCharCodeAt(s, i) > 0x7f) ascii = false;
  const bytes = ascii ? asciiBytes(s) : utf8Encode(s);
  const size = typedArrayByteLength(bytes);
  const out = new Uint8ArrayCtor(size);
  let w = 0;
  for (let i = 0; i < size; i++) {
    const b = bytes[i]!;
    if (b === PLUS) {
      out[w++] = 0x20;
    } else if (b === PERCENT && i + 2 < size && hexValue(bytes[i + 1]!) >= 0 && hexValue(bytes[i + 2]!) >= 0) {
      out[w++] = hexValue(bytes[i + 1]!) * 16 + hexValue(bytes[i + 2]!);
      i += 2;
    } else {
      out[w++] = b;
    }
  }
  // A view by constructor, not subarray(): no species lookup a mini-app could redirect.
  return utf8Decode(new Uint8ArrayCtor(typedArrayBuffer(out), 0, w), false, false, undefined, true);
}

function asciiBytes(s: string): Uint8Array {
  const n = s.length;
  const out = new Uint8ArrayCtor(n);
  for (let i = 0; i < n; i++) out[i] = stringCharCodeAt(s, i);
  return out;
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  return -1;
}

const HEX = '0123456789ABCDEF';
/** `%XX` for every byte, and the one-character string of every ASCII byte, built once. */
const ESCAPED: string[] = [];
const ASCII: string[] = [];
for (let b = 0; b < 256; b++) {
  append(ESCAPED, '%' + HEX[b >> 4] + HEX[b & 15]);
  if (b < 128) append(ASCII, StringFromCharCode(b));
}

/** ASCII alphanumerics and `*-._` pass unchanged; space becomes `+`. */
function isSafe(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2a || c === 0x2d || c === 0x2e || c === 0x5f;
}

function encode(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n && isSafe(stringCharCodeAt(s, i))) i++;
  if (i === n) return s;
  let out = stringSlice(s, 0, i);
  const bytes = utf8Encode(stringSlice(s, i));
  const size = typedArrayByteLength(bytes);
  for (let k = 0; k < size; k++) {
    const b = bytes[k]!;
    out += isSafe(b) ? ASCII[b]! : b === 0x20 ? '+' : ESCAPED[b]!;
  }
  return out;
}

/** Serializes name/value pairs as `name=value&…` with the form-urlencoded percent-encode set. */
export function serializeUrlencoded(list: readonly Pair[]): string {
  let out = '';
  for (let i = 0; i < list.length; i++) {
    const pair = list[i]!;
    if (i > 0) out += '&';
    out += encode(pair[0]) + '=' + encode(pair[1]);
  }
  return out;
}
