/**
 * The script form's map back to bundle lines (src/sandbox/line-map.ts) is decoded in
 * slices across event-loop turns instead of by node:module's SourceMap in one go (0.8 s
 * of the host's event loop for a 3.8 MB bundle: THREATS F43). It must answer exactly
 * what SourceMap.findEntry answers, once ready; a small map is ready at once.
 */
import { transform } from 'esbuild';
import { SourceMap } from 'node:module';
import { describe, expect, it } from 'vitest';
import { LineMap, mappingsOf } from '../../src/sandbox/line-map.ts';

async function mapOf(source: string) {
  const out = await transform(source, { format: 'cjs', loader: 'js', target: 'es2024', sourcemap: 'external', sourcesContent: false, sourcefile: 'app.js', logLevel: 'silent' });
  return { code: out.code, json: out.map };
}

async function ready(map: LineMap): Promise<number> {
  let turns = 0;
  while (!map.ready) {
    await new Promise((resolve) => setImmediate(resolve));
    turns++;
  }
  return turns;
}

describe('LineMap', () => {
  it('should be ready at once for a small map and agree with SourceMap', async () => {
    const { code, json } = await mapOf('export function f() {\n  // a comment\n  throw new Error("x");\n}\nexport const g = () => 1;\n');
    const map = LineMap.decode(mappingsOf(json));
    expect(map.ready).toBe(true);
    const ref = new SourceMap(JSON.parse(json));
    code.split('\n').forEach((line, l) => {
      for (let c = 0; c <= line.length + 1; c++) {
        const e = ref.findEntry(l, c) as { originalLine?: number; originalColumn?: number };
        expect(map.lookup(l, c), `${l}:${c}`).toEqual(typeof e.originalLine === 'number' ? { line: e.originalLine, column: e.originalColumn } : undefined);
      }
    });
  });

  it('should decode a large map over several event-loop turns and then agree with SourceMap everywhere', async () => {
    let source = '';
    for (let i = 0; i < 4000; i++) source += (i % 5 === 0 ? '\n/* gap */\n' : '') + `export function f${i}(a) { return a + ${i} * 2 - (a >> 1); }\n`;
    const { code, json } = await mapOf(source);
    const map = LineMap.decode(mappingsOf(json));
    expect(map.ready).toBe(false);
    expect(map.lookup(3, 0)).toBeUndefined(); // not ready yet: no position rather than a wrong one
    expect(await ready(map)).toBeGreaterThan(1);
    const ref = new SourceMap(JSON.parse(json));
    const lines = code.split('\n');
    for (let l = 0; l < lines.length; l += 7) {
      for (const c of [0, 5, 17, lines[l]!.length, lines[l]!.length + 10]) {
        const e = ref.findEntry(l, c) as { originalLine?: number; originalColumn?: number };
        expect(map.lookup(l, c), `${l}:${c}`).toEqual(typeof e.originalLine === 'number' ? { line: e.originalLine, column: e.originalColumn } : undefined);
      }
    }
  });

  it('should answer nothing, never throw, for a malformed map', async () => {
    const map = LineMap.decode('AAAA;!!!!,AAAA');
    await ready(map);
    expect(map.lookup(0, 0)).toBeUndefined();
    expect(mappingsOf('{"version":3}')).toBe('');
  });
});
