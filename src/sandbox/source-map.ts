/**
 * The bundle's own inline source map (`//# sourceMappingURL=data:application/json;base64,…`,
 * what `isohost build` writes), so a mini-app error can cite `src/index.ts:12` instead of a
 * bundle line. Source Map v3: https://tc39.es/ecma426/ ("mappings": base64 VLQ).
 *
 * The map is the uploader's input: it is decoded lazily (on the first error only), by this
 * small decoder with no dependency, and any malformation just means "no source position".
 * The per-line index built on first use keeps every later lookup to one line's segments,
 * so an app that throws on every call does not rescan a large map each time.
 */

/** A position in the author's source, for an error message. */
export interface AuthoredPosition {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
}

export interface InlineSourceMap {
  /** The bundle without its map comment: line numbers before it are unchanged. */
  readonly code: string;
  /** UTF-16 length of the map text held, for cache accounting. */
  readonly bytes: number;
  /** The authored position of a 0-based bundle line and column, when the map names one. */
  locate(line: number, column: number): AuthoredPosition | undefined;
}

const MARK = '\n//# sourceMappingURL=data:application/json;';
const TAIL = /^(?:charset=[\w-]+;)?base64,([A-Za-z0-9+/]+={0,2})\s*$/;
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) DIGIT['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Splits off a trailing inline source map; undefined when the bundle has none. */
export function splitInlineSourceMap(source: string): InlineSourceMap | undefined {
  const at = source.lastIndexOf(MARK);
  if (at < 0) return undefined;
  const m = TAIL.exec(source.slice(at + MARK.length));
  if (m === null) return undefined;
  const base64 = m[1]!;
  let mappings: Mappings | null | undefined;
  return {
    code: source.slice(0, at + 1),
    bytes: 2 * base64.length,
    locate(line, column) {
      if (mappings === undefined) mappings = Mappings.from(base64);
      try {
        return mappings?.locate(line, column);
      } catch {
        return undefined; // a malformed segment on this line: no source position, never a failed error report
      }
    },
  };
}

/** Decoded `sources` and `mappings`, with each generated line's start offset and running state. */
class Mappings {
  readonly #text: string;
  readonly #sources: string[];
  /** Per generated line: offset in #text, then source index, source line, source column, name index at its start. */
  readonly #lines: Int32Array;

  private constructor(text: string, sources: string[], lines: Int32Array) {
    this.#text = text;
    this.#sources = sources;
    this.#lines = lines;
  }

  static from(base64: string): Mappings | null {
    try {
      const map = JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as { version?: unknown; sources?: unknown; mappings?: unknown };
      if (map.version !== 3 || typeof map.mappings !== 'string' || !Array.isArray(map.sources)) return null;
      return new Mappings(map.mappings, map.sources.map((s) => (typeof s === 'string' ? s : '')), indexLines(map.mappings));
    } catch {
      return null;
    }
  }

  locate(line: number, column: number): AuthoredPosition | undefined {
    const l = this.#lines;
    if (line < 0 || line * 5 >= l.length) return undefined;
    const text = this.#text;
    const state = l.slice(line * 5 + 1, line * 5 + 5);
    let found: AuthoredPosition | undefined;
    let generated = 0;
    let pos = l[line * 5]!;
    while (pos < text.length && text.charCodeAt(pos) !== SEMICOLON) {
      if (text.charCodeAt(pos) === COMMA) pos++;
      let fields = 0;
      let delta = 0;
      while (pos < text.length && text.charCodeAt(pos) !== COMMA && text.charCodeAt(pos) !== SEMICOLON) {
        const value = vlq(text, pos);
        pos = cursor;
        if (fields === 0) delta = value;
        else if (fields <= 4) state[fields - 1] += value;
        fields++;
      }
      if (fields === 0) continue; // an empty segment (",,"): nothing to read
      checkFields(fields);
      generated += delta;
      if (generated > column) break;
      // A one-field segment marks the position as unmapped.
      found = fields > 1 ? { file: printable(this.#sources[state[0]!]), line: state[1]! + 1 } : undefined;
    }
    return found !== undefined && found.file !== '' ? found : undefined;
  }
}

const SEMICOLON = 59;
const COMMA = 44;

/**
 * One pass over every segment, recording where each generated line starts and the running
 * (source, line, column, name) there. Flat loop, small integers, no allocation per segment:
 * a 4 MB mappings string takes about as long as parsing its JSON.
 */
function indexLines(text: string): Int32Array {
  let lines = new Int32Array(5 * 1024);
  let count = 1;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let fields = 0;
  for (let pos = 0; pos < text.length; ) {
    const c = text.charCodeAt(pos);
    if (c === SEMICOLON || c === COMMA) {
      if (pos > 0 && fields !== 0) checkFields(fields);
      fields = 0;
      pos++;
      if (c === COMMA) continue;
      if ((count + 1) * 5 > lines.length) {
        const grown = new Int32Array(lines.length * 2);
        grown.set(lines);
        lines = grown;
      }
      const at = count * 5;
      lines[at] = pos;
      lines[at + 1] = s0;
      lines[at + 2] = s1;
      lines[at + 3] = s2;
      lines[at + 4] = s3;
      count++;
      continue;
    }
    const value = vlq(text, pos);
    pos = cursor;
    if (fields === 1) s0 += value;
    else if (fields === 2) s1 += value;
    else if (fields === 3) s2 += value;
    else if (fields === 4) s3 += value;
    fields++;
  }
  if (fields !== 0) checkFields(fields);
  return lines.slice(0, count * 5);
}

function checkFields(fields: number): void {
  if (fields !== 1 && fields !== 4 && fields !== 5) throw new Error('bad segment');
}

/** The position after the last vlq() read (synchronous use only). */
let cursor = 0;

/** One base64 VLQ value at `pos`; throws on a bad digit or more than 30 bits. */
function vlq(text: string, pos: number): number {
  let value = 0;
  let shift = 0;
  let digit;
  do {
    const c = text.charCodeAt(pos++);
    digit = c < 128 ? DIGIT[c]! : -1;
    if (digit < 0 || shift > 25) throw new Error('bad VLQ');
    value |= (digit & 31) << shift;
    shift += 5;
  } while (digit & 32);
  cursor = pos;
  return value & 1 ? -(value >>> 1) : value >>> 1;
}

/** A source name as the map gives it, kept to a short single line (it is the uploader's text). */
function printable(name: string | undefined): string {
  return (name ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '').slice(0, 200);
}
