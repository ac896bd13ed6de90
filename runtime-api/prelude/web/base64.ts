/**
 * `atob` and `btoa` (https://html.spec.whatwg.org/multipage/webappapis.html#atob),
 * with atob's input decoded by the forgiving-base64 algorithm
 * (https://infra.spec.whatwg.org/#forgiving-base64-decode).
 */
import { stringCharCodeAt, Uint8ArrayCtor } from '../intrinsics.ts';
import { domException } from './dom-exception.ts';
import { codeUnitsToString } from './saved.ts';
import { isAsciiWhitespace, requireArgs, toDOMString } from './webidl.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) DECODE[stringCharCodeAt(ALPHABET, i)] = i;
const ENCODE = new Uint8ArrayCtor(64);
for (let i = 0; i < 64; i++) ENCODE[i] = stringCharCodeAt(ALPHABET, i);


const invalid = (): never => {
  throw domException('InvalidCharacterError', 'The string to be decoded is not correctly encoded.');
};

/**
 * Decodes base64 into a "binary string" (one code unit per byte).
 *
 * @example atob(' aGk = ') // 'hi'
 */
export function atob(data: unknown): string {
  requireArgs(arguments.length, 1, 'atob');
  const s = toDOMString(data);
  const sextets = new Uint8ArrayCtor(s.length);
  let n = 0;
  let pad = 0;
  for (let i = 0; i < s.length; i++) {
    const c = stringCharCodeAt(s, i);
    if (isAsciiWhitespace(c)) continue;
    if (c === 0x3d) { pad++; continue; } // '=' is allowed only as the last one or two characters
    if (pad > 0 || c > 127 || DECODE[c]! < 0) invalid();
    sextets[n++] = DECODE[c]!;
  }
  if (pad > 2 || (pad > 0 && (n + pad) % 4 !== 0) || n % 4 === 1) invalid();
  const bytes = new Uint8ArrayCtor((n * 3) >> 2);
  let j = 0;
  for (let i = 0; i < n; i += 4) {
    const a = sextets[i]!, b = sextets[i + 1]!, c = sextets[i + 2]!, d = sextets[i + 3]!;
    bytes[j++] = (a << 2) | (b >> 4);
    if (i + 2 < n) bytes[j++] = ((b & 15) << 4) | (c >> 2);
    if (i + 3 < n) bytes[j++] = ((c & 3) << 6) | d;
  }
  return codeUnitsToString(bytes, j);
}

/**
 * Encodes a binary string (code units 0–255) as base64.
 *
 * @example btoa('hi') // 'aGk='
 */
export function btoa(data: unknown): string {
  requireArgs(arguments.length, 1, 'btoa');
  const s = toDOMString(data);
  const n = s.length;
  const out = new Uint8ArrayCtor(((n + 2) / 3 | 0) * 4);
  let j = 0;
  for (let i = 0; i < n; i += 3) {
    const a = stringCharCodeAt(s, i);
    const b = i + 1 < n ? stringCharCodeAt(s, i + 1) : 0;
    const c = i + 2 < n ? stringCharCodeAt(s, i + 2) : 0;
    if ((a | b | c) > 0xff) {
      throw domException('InvalidCharacterError', 'The string to be encoded contains characters outside of the Latin1 range.');
    }
    out[j++] = ENCODE[a >> 2]!;
    out[j++] = ENCODE[((a & 3) << 4) | (b >> 4)]!;
    out[j++] = i + 1 < n ? ENCODE[((b & 15) << 2) | (c >> 6)]! : 0x3d;
    out[j++] = i + 2 < n ? ENCODE[c & 63]! : 0x3d;
  }
  return codeUnitsToString(out, j);
}
