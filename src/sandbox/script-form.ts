/**
 * Bundles run as classic scripts, not ES modules, because isolated-vm 7 consumes V8's
 * code cache only for scripts: it compiles modules with `kNoCompileOptions`, so a module
 * `cachedData` is silently ignored (measured: 11.8 ms with or without it), while a
 * script with `cachedData` compiles in 0.7 ms instead of 15 ms (3000-function bundle).
 *
 * esbuild rewrites the ESM bundle to CommonJS once per sha256; the result is wrapped in
 * a strict function that returns the exports object. Error lines are mapped back to
 * the bundle through esbuild's source map, so a mini-app error names the line the
 * author wrote. Bundles are still compiled as modules once (on first sight) to reject
 * imports with V8's own parser; top-level await has no script form and is rejected.
 */
import { transformSync } from 'esbuild';
import { SourceMap } from 'node:module';
import { IsohostError } from '../errors.ts';

export interface ScriptForm {
  /** A script whose completion value is the bundle's exports object. */
  readonly script: string;
  /** 1-based line in the bundle for a 1-based line and column of the script, if known. */
  originalLine(line: number, column: number): number | undefined;
}

const WRAP_HEAD = '(function () {"use strict"; const module = { exports: {} }; const exports = module.exports;\n';
const WRAP_TAIL = '\nreturn module.exports; })()';
/** Lines the wrapper puts before the converted code. */
const HEAD_LINES = 1;

export function toScriptForm(source: string): ScriptForm {
  let out;
  try {
    out = transformSync(source, { format: 'cjs', loader: 'js', target: 'es2024', sourcemap: 'external', sourcefile: 'app.js', logLevel: 'silent', charset: 'utf8' });
  } catch (err) {
    const text = (err as { errors?: { text: string; location?: { line: number } }[] }).errors?.[0];
    if (text?.text.startsWith('Top-level await')) {
      throw new IsohostError('invalid_request', 'top-level await is not supported: platform calls are served inside methods only');
    }
    throw new IsohostError('invalid_request', `bundle does not compile: ${text?.text ?? 'syntax error'}${text?.location ? ` [app.js:${text.location.line}]` : ''}`);
  }
  let map: SourceMap | undefined;
  try {
    map = new SourceMap(JSON.parse(out.map));
  } catch {
    map = undefined;
  }
  return Object.freeze({
    script: WRAP_HEAD + out.code + WRAP_TAIL,
    originalLine(line: number, column: number) {
      const entry = map?.findEntry(line - 1 - HEAD_LINES, Math.max(0, column - 1));
      return entry && 'originalLine' in entry && typeof entry.originalLine === 'number' ? entry.originalLine + 1 : undefined;
    },
  });
}
