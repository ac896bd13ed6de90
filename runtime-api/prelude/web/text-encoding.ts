/**
 * `TextEncoder` and `TextDecoder`, UTF-8 only, per the WHATWG Encoding standard
 * (https://encoding.spec.whatwg.org/#utf-8-decoder): `fatal`, `ignoreBOM` and
 * `stream`; invalid input becomes U+FFFD by the "maximal subpart" rule.
 *
 * Why not the fastestsmallesttextencoderdecoder polyfill: it has no `fatal`,
 * `ignoreBOM`, `stream` or `encodeInto`, keeps the BOM, decodes ED A0 80 to a lone
 * surrogate and differs from the standard in how many U+FFFD it emits for truncated
 * sequences (checked against Node's decoder), and it reads live globals.
 */
import {
  arrayBufferByteLength, RangeErrorCtor, stringCharCodeAt,
  stringSlice, stringToLowerCase, typedArrayBuffer, typedArrayByteLength, typedArrayByteOffset, TypeErrorCtor,
  Uint8ArrayCtor,
} from '../intrinsics.ts';
import {
  codeUnitsToString, dataViewBuffer, dataViewByteLength, dataViewByteOffset, sharedArrayBufferByteLength, succeeds,
  typedArrayTag, Uint16ArrayCtor,
} from './saved.ts';
import { defineInterface, isAsciiWhitespace, markPlatformObject, toDictionary, toDOMString } from './webidl.ts';

/** Encodes a string as UTF-8; lone surrogates become U+FFFD (EF BF BD). */
export function utf8Encode(s: string): Uint8Array {
  const n = s.length;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const c = stringCharCodeAt(s, i);
    if (c < 0x80) size += 1;
    else if (c < 0x800) size += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (stringCharCodeAt(s, i + 1) & 0xfc00) === 0xdc00) { size += 4; i++; }
    else size += 3;
  }
  const out = new Uint8ArrayCtor(size);
  encodeTo(s, out);
  return out;
}

/** Writes as much of `s` as fits into `out`; returns [code units read, bytes written]. */
function encodeTo(s: string, out: Uint8Array): [number, number] {
  const n = s.length;
  const cap = typedArrayByteLength(out);
  let i = 0;
  let j = 0;
  while (i < n) {
    let c = stringCharCodeAt(s, i);
    let units = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? stringCharCodeAt(s, i + 1) : 0;
      if (c <= 0xdbff && (d & 0xfc00) === 0xdc00) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); units = 2; }
      else c = 0xfffd;
    }
    if (c < 0x80) {
      if (j + 1 > cap) break;
      out[j++] = c;
    } else if (c < 0x800) {
      if (j + 2 > cap) break;
      out[j++] = 0xc0 | (c >> 6); out[j++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      if (j + 3 > cap) break;
      out[j++] = 0xe0 | (c >> 12); out[j++] = 0x80 | ((c >> 6) & 0x3f); out[j++] = 0x80 | (c & 0x3f);
    } else {
      if (j + 4 > cap) break;
      out[j++] = 0xf0 | (c >> 18); out[j++] = 0x80 | ((c >> 12) & 0x3f);
      out[j++] = 0x80 | ((c >> 6) & 0x3f); out[j++] = 0x80 | (c & 0x3f);
    }
    i += units;
  }
  return [i, j];
}

/** State of one UTF-8 decoder (the standard's variables) plus the BOM flags. */
interface DecoderState { cp: number; seen: number; needed: number; lower: number; upper: number; bomSeen: boolean }
const freshState = (): DecoderState => ({ cp: 0, seen: 0, needed: 0, lower: 0x80, upper: 0xbf, bomSeen: false });

const CHUNK = 8192;
// One scratch buffer per isolate, made on first use (not carried in every snapshot);
// decoding runs no guest code, so it is never re-entered.
let scratch: Uint16Array | undefined;

/**
 * Decodes UTF-8 bytes. `st` carries a partial sequence across `stream` calls; pass a
 * fresh state (or none) for one-shot decoding, which strips a leading BOM.
 */
export function utf8Decode(bytes: Uint8Array, fatal = false, stream = false, st = freshState(), ignoreBOM = false): string {
  const units = (scratch ??= new Uint16ArrayCtor(CHUNK + 2));
  let k = 0;
  let out = '';
  const n = typedArrayByteLength(bytes);
  const emit = (c: number): void => {
    if (!st.bomSeen && !ignoreBOM) {
      st.bomSeen = true;
      if (c === 0xfeff) return;
    }
    if (c > 0xffff) { c -= 0x10000; units[k++] = 0xd800 + (c >> 10); units[k++] = 0xdc00 + (c & 0x3ff); }
    else units[k++] = c;
    if (k >= CHUNK) { out += codeUnitsToString(units, k); k = 0; }
  };
  const error = (): void => {
    if (fatal) {
      st.cp = st.needed = st.seen = 0; st.lower = 0x80; st.upper = 0xbf;
      throw new TypeErrorCtor('The encoded data was not valid UTF-8.');
    }
    emit(0xfffd);
  };
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (st.needed === 0) {
      if (b < 0x80) emit(b);
      else if (b >= 0xc2 && b <= 0xdf) { st.needed = 1; st.cp = b & 0x1f; }
      else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) st.lower = 0xa0; else if (b === 0xed) st.upper = 0x9f;
        st.needed = 2; st.cp = b & 0xf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) st.lower = 0x90; else if (b === 0xf4) st.upper = 0x8f;
        st.needed = 3; st.cp = b & 0x7;
      } else error();
      continue;
    }
    if (b < st.lower || b > st.upper) {
      st.cp = st.needed = st.seen = 0; st.lower = 0x80; st.upper = 0xbf;
      i--; // the byte is processed again as the start of a new sequence
      error();
      continue;
    }
    st.lower = 0x80; st.upper = 0xbf;
    st.cp = (st.cp << 6) | (b & 0x3f);
    if (++st.seen === st.needed) {
      const c = st.cp;
      st.cp = st.needed = st.seen = 0;
      emit(c);
    }
  }
  if (!stream && st.needed !== 0) {
    st.cp = st.needed = st.seen = 0; st.lower = 0x80; st.upper = 0xbf;
    error();
  }
  return k === 0 ? out : out + codeUnitsToString(units, k);
}

/** A Uint8Array over the bytes of a BufferSource ([AllowShared]), without copying. */
export function bufferSourceBytes(input: unknown, what: string): Uint8Array {
  if (typedArrayTag(input) !== undefined) {
    return new Uint8ArrayCtor(typedArrayBuffer(input), typedArrayByteOffset(input), typedArrayByteLength(input));
  }
  if (succeeds(dataViewByteLength, input)) {
    return new Uint8ArrayCtor(dataViewBuffer(input), dataViewByteOffset(input), dataViewByteLength(input));
  }
  if (succeeds(arrayBufferByteLength, input) || (sharedArrayBufferByteLength !== undefined && succeeds(sharedArrayBufferByteLength, input))) {
    return new Uint8ArrayCtor(input as ArrayBuffer);
  }
  throw new TypeErrorCtor(`${what}: the argument must be an ArrayBuffer or ArrayBufferView`);
}

/** @example new TextEncoder().encode('€') // Uint8Array [226, 130, 172] */
export class TextEncoder {
  #brand = true;
  constructor() { markPlatformObject(this); }
  get encoding(): string { void this.#brand; return 'utf-8'; }
  encode(input: unknown = ''): Uint8Array {
    void this.#brand;
    return utf8Encode(toDOMString(input));
  }
  encodeInto(source: unknown, destination: unknown): { read: number; written: number } {
    void this.#brand;
    const s = toDOMString(source);
    if (typedArrayTag(destination) !== 'Uint8Array') throw new TypeErrorCtor('TextEncoder.encodeInto: destination must be a Uint8Array');
    const r = encodeTo(s, destination as Uint8Array);
    return { read: r[0], written: r[1] };
  }
}
defineInterface(TextEncoder, 'TextEncoder');

function trimAsciiWhitespace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isAsciiWhitespace(stringCharCodeAt(s, a))) a++;
  while (b > a && isAsciiWhitespace(stringCharCodeAt(s, b - 1))) b--;
  return stringSlice(s, a, b);
}

const LABELS = ['unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'utf-8', 'utf8', 'x-unicode20utf8'];

/** @example new TextDecoder('utf-8', { fatal: true }).decode(bytes) */
export class TextDecoder {
  #fatal: boolean;
  #ignoreBOM: boolean;
  #state = freshState();
  #doNotFlush = false;

  constructor(label: unknown = 'utf-8', options: unknown = undefined) {
    // Labels are matched after trimming ASCII whitespace and lowercasing (Encoding §4.2).
    const l = stringToLowerCase(trimAsciiWhitespace(toDOMString(label)));
    let ok = false;
    for (let i = 0; i < LABELS.length; i++) if (LABELS[i] === l) ok = true;
    if (!ok) throw new RangeErrorCtor(`TextDecoder: the encoding "${toDOMString(label)}" is not supported (isohost decodes utf-8 only)`);
    const o = toDictionary(options, 'TextDecoder');
    this.#fatal = !!o.fatal;
    this.#ignoreBOM = !!o.ignoreBOM;
    markPlatformObject(this);
  }
  get encoding(): string { void this.#fatal; return 'utf-8'; }
  get fatal(): boolean { return this.#fatal; }
  get ignoreBOM(): boolean { return this.#ignoreBOM; }

  decode(input: unknown = undefined, options: unknown = undefined): string {
    const bytes = input === undefined ? new Uint8ArrayCtor(0) : bufferSourceBytes(input, 'TextDecoder.decode');
    const stream = !!toDictionary(options, 'TextDecoder.decode').stream;
    if (!this.#doNotFlush) this.#state = freshState();
    this.#doNotFlush = stream;
    return utf8Decode(bytes, this.#fatal, stream, this.#state, this.#ignoreBOM);
  }
}
defineInterface(TextDecoder, 'TextDecoder');
