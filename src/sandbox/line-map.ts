/**
 * The script form's way back to bundle positions: esbuild's source map `mappings`
 * (Source Map v3, base64 VLQ), decoded into flat arrays in slices of SLICE_CHARS, one
 * per event-loop turn, so decoding never holds the host's event loop for long.
 *
 * Why not `new SourceMap(JSON.parse(map))` from node:module, as before: it decodes every
 * mapping eagerly on the main thread — 0.8 s for a 3.8 MB bundle (7.5 MB map) on the
 * bench machine, at every first sight of an uploaded bundle: a tenant could stall every
 * tenant's requests by uploading (THREATS F43). A small map (every ordinary bundle)
 * decodes in one slice, at once; a large one is ready a few event-loop turns later, and
 * until then an error message simply carries no bundle line.
 */

/** Mapping characters decoded per event-loop turn (~0.15 ms on the bench machine, p50). */
const SLICE_CHARS = 4 * 1024;

const BASE64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) BASE64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** A decoded position in the original file (0-based line and column). */
export interface Origin {
  line: number;
  column: number;
}

/** A growable Int32Array: large maps hold millions of segments, kept off the JS heap's object graph. */
class Ints {
  a: Int32Array;
  length = 0;

  constructor(capacity: number) {
    this.a = new Int32Array(Math.max(16, capacity));
  }

  push(v: number): void {
    if (this.length === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = v;
  }

  at(i: number): number {
    return this.a[i]!;
  }
}

export class LineMap {
  /** Per segment: generated column, original line, original column (-1: no source). */
  readonly #genCol: Ints;
  readonly #origLine: Ints;
  readonly #origCol: Ints;
  /** Index of the first segment of each generated line. */
  readonly #lineStart = new Ints(1024);
  #ready = false;

  /** Sized for the most segments `chars` of mappings can hold (one with a source takes 4 characters and a separator), so decoding never copies. */
  private constructor(chars: number) {
    const segments = Math.ceil(chars / 5) + 1;
    this.#genCol = new Ints(segments);
    this.#origLine = new Ints(segments);
    this.#origCol = new Ints(segments);
    this.#lineStart.push(0);
  }

  /** Starts decoding `mappings`; a map that fits one slice is ready on return. */
  static decode(mappings: string): LineMap {
    const map = new LineMap(mappings.length);
    map.#run(mappings, 0, { origLine: 0, origCol: 0, source: 0 });
    return map;
  }

  /** Whether lookups can answer yet. */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * The original position of the closest mapping at or before generated `line` and
   * `column` (both 0-based), as node:module's `findEntry` does; undefined while decoding
   * or when nothing maps there.
   */
  lookup(line: number, column: number): Origin | undefined {
    if (!this.#ready || line < 0) return undefined;
    const lines = this.#lineStart.length - 1;
    let l = Math.min(line, lines - 1);
    let col = line > l ? Infinity : column;
    for (; l >= 0; l--, col = Infinity) {
      const start = this.#lineStart.at(l);
      for (let i = this.#lineStart.at(l + 1) - 1; i >= start; i--) {
        if (this.#genCol.at(i) <= col) return this.#origLine.at(i) < 0 ? undefined : { line: this.#origLine.at(i), column: this.#origCol.at(i) };
      }
    }
    return undefined;
  }

  #run(m: string, from: number, st: { origLine: number; origCol: number; source: number }): void {
    const end = Math.min(m.length, from + SLICE_CHARS);
    let i = from;
    // A slice ends on a segment boundary, so a segment is never split across turns.
    let genCol = this.#genCol.length > this.#lineStart.at(this.#lineStart.length - 1) ? this.#genCol.at(this.#genCol.length - 1) : 0;
    const fields = [0, 0, 0, 0, 0];
    while (i < m.length && (i < end || (m.charCodeAt(i) !== 0x3b && m.charCodeAt(i) !== 0x2c))) {
      const c = m.charCodeAt(i);
      if (c === 0x3b) {
        // ';' — next generated line: its columns start again at 0
        this.#lineStart.push(this.#genCol.length);
        genCol = 0;
        i++;
        continue;
      }
      if (c === 0x2c) {
        i++;
        continue;
      }
      let n = 0;
      while (i < m.length && m.charCodeAt(i) !== 0x2c && m.charCodeAt(i) !== 0x3b && n < 5) {
        let value = 0;
        let shift = 0;
        let digit: number;
        do {
          digit = BASE64[m.charCodeAt(i++)] ?? -1;
          if (digit < 0) return this.#fail();
          value += (digit & 31) * 2 ** shift;
          shift += 5;
        } while (digit & 32 && shift < 53);
        fields[n++] = value % 2 === 1 ? -(value - 1) / 2 : value / 2;
      }
      genCol += fields[0]!;
      this.#genCol.push(genCol);
      if (n >= 4) {
        st.source += fields[1]!;
        st.origLine += fields[2]!;
        st.origCol += fields[3]!;
        this.#origLine.push(st.origLine);
        this.#origCol.push(st.origCol);
      } else {
        this.#origLine.push(-1);
        this.#origCol.push(-1);
      }
    }
    if (i >= m.length) {
      this.#lineStart.push(this.#genCol.length);
      this.#ready = true;
      return;
    }
    setImmediate(() => this.#run(m, i, st));
  }

  /** A malformed map: no positions at all, never a throw. */
  #fail(): void {
    this.#genCol.length = this.#origLine.length = this.#origCol.length = 0;
    this.#lineStart.length = 1;
    this.#lineStart.push(0);
    this.#ready = true;
  }

  /** Host memory the decoded map holds (bytes), for the compile cache's bound. */
  get bytes(): number {
    return 4 * (this.#genCol.a.length + this.#origLine.a.length + this.#origCol.a.length + this.#lineStart.a.length);
  }
}

/**
 * The `mappings` string of esbuild's map JSON, without parsing the rest (its
 * `sourcesContent` alone is as long as the bundle). Mappings hold no characters JSON
 * escapes, so the text between the quotes is the value.
 */
export function mappingsOf(mapJson: string): string {
  const key = '"mappings":';
  const at = mapJson.indexOf(key);
  if (at < 0) return '';
  const open = mapJson.indexOf('"', at + key.length);
  const close = open < 0 ? -1 : mapJson.indexOf('"', open + 1);
  return close < 0 ? '' : mapJson.slice(open + 1, close);
}
