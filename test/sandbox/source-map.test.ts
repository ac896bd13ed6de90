/**
 * Errors of a bundle built with an inline source map cite the author's `file.ts:line`
 * (issue 12): the decoder alone against esbuild's own maps, and a real isolate that throws.
 */
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitInlineSourceMap } from '../../src/sandbox/source-map.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

const TS = `interface Order { qty: number }

export function total(args: Order): number {
  if (args.qty < 0) {
    throw new RangeError('qty must not be negative');
  }
  return args.qty * 2;
}

export const ok = (): string => 'ok';
`;

async function bundle(contents: string, minify = false): Promise<string> {
  const r = await build({
    stdin: { contents, loader: 'ts', sourcefile: 'src/index.ts', resolveDir: '/' },
    bundle: true, format: 'esm', platform: 'neutral', sourcemap: 'inline', sourcesContent: false,
    write: false, outfile: '/bundle.js', minify, logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

describe('splitInlineSourceMap', () => {
  it('should map each bundle line of esbuild output to its TypeScript line', async () => {
    const js = await bundle(TS);
    const map = splitInlineSourceMap(js)!;
    expect(map).toBeDefined();
    expect(map.code).not.toContain('sourceMappingURL');
    const lines = map.code.split('\n');
    const throwAt = lines.findIndex((l) => l.includes('throw new RangeError'));
    expect(map.locate(throwAt, lines[throwAt]!.indexOf('throw'))).toEqual({ file: 'src/index.ts', line: 5 });
    const returnAt = lines.findIndex((l) => l.includes('return args.qty'));
    expect(map.locate(returnAt, lines[returnAt]!.indexOf('return'))).toEqual({ file: 'src/index.ts', line: 7 });
  });

  it('should use the column on a minified one-line bundle', async () => {
    const js = await bundle(TS, true);
    const map = splitInlineSourceMap(js)!;
    const code = map.code.split('\n')[0]!;
    expect(map.locate(0, code.indexOf('throw'))).toEqual({ file: 'src/index.ts', line: 5 });
    expect(map.locate(0, code.indexOf('"ok"'))).toEqual({ file: 'src/index.ts', line: 10 });
  });

  it('should give nothing for a bundle without a map, a malformed map or an unmapped line', async () => {
    expect(splitInlineSourceMap('export const a = 1;\n')).toBeUndefined();
    const garbage = splitInlineSourceMap('export const a = 1;\n//# sourceMappingURL=data:application/json;base64,' + Buffer.from('{"version":3,"sources":["x.ts"],"mappings":"A!!"}').toString('base64'));
    expect(garbage?.locate(0, 0)).toBeUndefined();
    const notJson = splitInlineSourceMap('export const a = 1;\n//# sourceMappingURL=data:application/json;base64,AAAA');
    expect(notJson?.locate(0, 0)).toBeUndefined();
    const js = await bundle(TS);
    const map = splitInlineSourceMap(js.replace('export {', 'export function extra() { return 1; }\nexport {'))!;
    const lines = map.code.split('\n');
    expect(map.locate(lines.findIndex((l) => l.includes('function extra')), 0)).toBeUndefined();
    expect(map.locate(10_000, 0)).toBeUndefined();
  });

  it('should read empty segments and keep a hostile source name to one short printable line', () => {
    const inline = (m: object) => 'export const a = 1;\n//# sourceMappingURL=data:application/json;base64,' + Buffer.from(JSON.stringify(m)).toString('base64');
    // Line 0: an empty segment between two real ones; column 4 maps to source line 3 ("AAEA": +0 source, +2 lines).
    const empty = splitInlineSourceMap(inline({ version: 3, sources: ['src/a.ts'], mappings: 'AAAA,,IAEA', names: [] }))!;
    expect(empty.locate(0, 0)).toEqual({ file: 'src/a.ts', line: 1 });
    expect(empty.locate(0, 5)).toEqual({ file: 'src/a.ts', line: 3 });
    const hostile = splitInlineSourceMap(inline({ version: 3, sources: ['src/\u001b[31mred\n' + 'x'.repeat(500)], mappings: 'AAAA' }))!;
    const file = hostile.locate(0, 0)!.file;
    expect(file).toMatch(/^src\/\[31mredx+$/);
    expect(file.length).toBe(200);
  });
});

describe('a thrown error in an isolate', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  beforeAll(async () => {
    platform = await startTestPlatform([{ id: 'alpha' }]);
  });
  afterAll(async () => platform.dispose());

  it('should cite src/index.ts and the line of the throw when the bundle carries its map', async () => {
    const js = await bundle(TS);
    const err = await callOnce(platform, 'alpha', 'orders', js, 'total', { qty: -1 }).catch((e) => e);
    expect(err.code).toBe('miniapp_error');
    expect(err.message).toContain('qty must not be negative');
    expect(err.message).toMatch(/\(src\/index\.ts:5\)$/);
    expect(err.details).toMatchObject({ file: 'src/index.ts', file_line: 5 });
    expect(err.details.line).toBe(js.split('\n').findIndex((l) => l.includes('throw new RangeError')) + 1);
  });

  it('should cite the bundle line when the bundle has no map', async () => {
    const js = (await bundle(TS)).replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
    const err = await callOnce(platform, 'alpha', 'orders', js, 'total', { qty: -1 }).catch((e) => e);
    const line = js.split('\n').findIndex((l) => l.includes('throw new RangeError')) + 1;
    expect(err.message).toMatch(new RegExp(`\\(bundle line ${line}\\)$`));
    expect(err.details).toEqual({ line });
  });
});
