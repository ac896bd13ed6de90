/**
 * The checkout passes `npm test` alone (issue 9: a fresh clone with nothing beside it).
 * No source, test or bench file may reach outside the repository: no relative path that
 * climbs above its root, no absolute path into the workplace's shared folder.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCANNED = ['src', 'test', 'bench', 'bin', 'runtime-api', 'sample-miniapps'];

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'fixtures') yield* files(p);
    } else if (/\.(ts|js|mjs|cjs)$/.test(e.name)) yield p;
  }
}

/** Relative paths that climb out of `file`'s directory, as written in string literals. */
function escapes(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/['"`]((?:\.\.\/)+[^'"`\s]*)['"`]/g)) {
    const target = resolve(dirname(file), m[1]!);
    if (target !== ROOT && !target.startsWith(ROOT + sep)) out.push(m[1]!);
  }
  return out;
}

describe('the repository is self-contained', () => {
  const self = fileURLToPath(import.meta.url);
  // This file holds an escaping path on purpose, to prove the check can fail.
  const all = SCANNED.flatMap((d) => [...files(join(ROOT, d))]).filter((f) => f !== self);

  it('should scan the sources and tests', () => {
    expect(all.length).toBeGreaterThan(50);
  });

  it('should have no path that climbs out of the checkout', () => {
    const found = all.flatMap((f) => escapes(f, readFileSync(f, 'utf8')).map((p) => `${relative(ROOT, f)}: ${p}`));
    expect(found).toEqual([]);
  });

  it('should name no absolute path into the workplace', () => {
    const found = all.filter((f) => /['"`]\/work\//.test(readFileSync(f, 'utf8'))).map((f) => relative(ROOT, f));
    expect(found).toEqual([]);
  });

  it('should detect a path that climbs out (the check can fail)', () => {
    expect(escapes(join(ROOT, 'test/helpers/wpt.ts'), "new URL('../../../shared/wpt/', x)")).toEqual(['../../../shared/wpt/']);
    expect(escapes(join(ROOT, 'test/helpers/wpt.ts'), "new URL('../fixtures/wpt/', x)")).toEqual([]);
  });

  it('should carry the WPT vectors with their licence and source', () => {
    const dir = join(ROOT, 'test/fixtures/wpt');
    const names = readdirSync(dir).sort();
    expect(names).toEqual(['LICENSE.md', 'README.md', 'setters_tests.json', 'urltestdata.json']);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/sha256/);
  });
});
