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
      return mappings?.locate(line, column);
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
      const text = map.mappings;
      const lines: number[] = [0, 0, 0, 0, 0];
      const state = [0, 0, 0, 0];
      for (let pos = 0; pos < text.length; ) {
        const c = text.charCodeAt(pos);
        if (c === 59 /* ; */) {
          pos++;
          lines.push(pos, state[0]!, state[1]!, state[2]!, state[3]!);
        } else if (c === 44 /* , */) pos++;
        else pos = segment(text, pos, state).end;
      }
      return new Mappings(text, map.sources.map((s) => (typeof s === 'string' ? s : '')), Int32Array.from(lines));
    } catch {
      return null;
    }
  }

  locate(line: number, column: number): AuthoredPosition | undefined {
    if (line < 0 || line * 5 >= this.#lines.length) return undefined;
    const l = this.#lines;
    const state = [l[line * 5 + 1]!, l[line * 5 + 2]!, l[line * 5 + 3]!, l[line * 5 + 4]!];
    let found: AuthoredPosition | undefined;
    for (let pos = l[line * 5]!, generated = 0; pos < this.#text.length && this.#text[pos] !== ';'; ) {
      if (this.#text[pos] === ',') {
        pos++;
        continue;
      }
      const s = segment(this.#text, pos, state);
      pos = s.end;
      generated += s.column;
      if (generated > column) break;
      // A one-field segment marks the position as unmapped.
      found = s.mapped ? { file: printable(this.#sources[state[0]!]), line: state[1]! + 1 } : undefined;
    }
    return found !== undefined && found.file !== '' ? found : undefined;
  }
}

/** Reads one segment at `pos`, adding its relative fields to `state` (source, line, column, name). */
function segment(text: string, pos: number, state: number[]): { end: number; column: number; mapped: boolean } {
  const fields: number[] = [];
  while (pos < text.length && text[pos] !== ',' && text[pos] !== ';') {
    let value = 0;
    let shift = 0;
    let digit;
    do {
      const c = text.charCodeAt(pos++);
      digit = c < 128 ? DIGIT[c]! : -1;
      if (digit < 0 || shift > 30) throw new Error('bad VLQ');
      value += (digit & 31) * 2 ** shift;
      shift += 5;
    } while (digit & 32);
    fields.push(value % 2 === 1 ? -(value - 1) / 2 : value / 2);
  }
  if (fields.length !== 1 && fields.length !== 4 && fields.length !== 5) throw new Error('bad segment');
  for (let i = 1; i < fields.length; i++) state[i - 1] += fields[i];
  return { end: pos, column: fields[0]!, mapped: fields.length > 1 };
}

/** A source name as the map gives it, kept to a short single line (it is the uploader's text). */
function printable(name: string | undefined): string {
  return (name ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '').slice(0, 200);
}
