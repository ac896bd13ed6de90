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
 *
 * The script's completion value is the wrapper function itself, not its result:
 * running the script only creates a function (no mini-app code runs), so the host can
 * run it synchronously; the prelude's `load` then calls it on the isolate's own thread
 * under the launch deadline (THREATS F41/F42).
 */
import { IsohostError, type ErrorCode } from '../errors.ts';
import { LineMap, mappingsOf } from './line-map.ts';
import { splitInlineSourceMap, type AuthoredPosition, type InlineSourceMap } from './source-map.ts';

export interface ScriptForm {
  /** A script whose completion value is a function that runs the bundle and returns its exports object. */
  readonly script: string;
  /** Host memory this form holds, about (UTF-16 script text and source map), for the compile cache's byte bound. */
  readonly bytes: number;
  /** 1-based line in the bundle for a 1-based line and column of the script, if known. */
  originalLine(line: number, column: number): number | undefined;
  /** The author's file and line for a 1-based line and column of the script, when the bundle carries an inline source map naming one. */
  authoredPosition(line: number, column: number): AuthoredPosition | undefined;
}

const WRAP_HEAD = '(function () {"use strict"; const module = { exports: {} }; const exports = module.exports;\n';
const WRAP_TAIL = '\nreturn module.exports; })';
/** Lines the wrapper puts before the converted code. */
const HEAD_LINES = 1;

/**
 * What esbuild makes of a bundle: its CommonJS code and the source map's `mappings` from
 * that code to the bundle. Plain strings, so the host can make it once and send it to a
 * sandbox process with the bundle (process/supervised-process.ts): a sandbox then builds
 * the form with formOf() and never starts esbuild's service (a Go process of ~12 MB and
 * ~30 ms of CPU per sandbox process, measured).
 */
export interface Converted {
  readonly code: string;
  readonly mappings: string;
}

/**
 * A bundle esbuild would not convert, as the host found it: the error its conversion
 * gave, reported where the conversion would have been made (after V8's own checks of
 * the bundle, as on first sight in the host), so a sandbox needs no esbuild for it either.
 */
export interface Refused {
  readonly refused: { readonly code: ErrorCode; readonly message: string };
}

/** What the host found converting a bundle. */
export type Conversion = Converted | Refused;

/** Converts a bundle (off the main thread: esbuild's service does the work; loaded on first use). */
export async function convert(source: string): Promise<Converted> {
  return convertSplit(source, splitInlineSourceMap(source));
}

/** The script form of `source` from the host's conversion of it: no esbuild here. Throws the conversion's error if it was refused. */
export function formOf(source: string, conversion: Conversion): ScriptForm {
  if ('refused' in conversion) throw new IsohostError(conversion.refused.code, conversion.refused.message);
  return formFrom(conversion, splitInlineSourceMap(source));
}

/** Converts a bundle and builds its form. */
export async function toScriptForm(source: string): Promise<ScriptForm> {
  const inline = splitInlineSourceMap(source);
  return formFrom(await convertSplit(source, inline), inline);
}

async function convertSplit(source: string, inline: InlineSourceMap | undefined): Promise<Converted> {
  // esbuild would fold the bundle's own inline map into its output map, which would then
  // give source lines as bundle lines and lose every line that map leaves out: the map
  // comment is taken off here and read on its own (source-map.ts).
  const { transform } = await import('esbuild');
  let out;
  try {
    out = await transform(inline?.code ?? source, { format: 'cjs', loader: 'js', target: 'es2024', sourcemap: 'external', sourcesContent: false, sourcefile: 'app.js', logLevel: 'silent', charset: 'utf8' });
  } catch (err) {
    const text = (err as { errors?: { text: string; location?: { line: number } }[] }).errors?.[0];
    if (text?.text.startsWith('Top-level await')) {
      throw new IsohostError('invalid_request', 'top-level await is not supported: platform calls are served inside methods only');
    }
    throw new IsohostError('invalid_request', `bundle does not compile: ${text?.text ?? 'syntax error'}${text?.location ? ` [app.js:${text.location.line}]` : ''}`);
  }
  return { code: out.code, mappings: mappingsOf(out.map) };
}

function formFrom(converted: Converted, inline: InlineSourceMap | undefined): ScriptForm {
  // Decoded in slices, off the launch path's event-loop turn (line-map.ts, THREATS F43).
  const map = LineMap.decode(converted.mappings);
  const { code } = converted;
  return Object.freeze({
    script: WRAP_HEAD + code + WRAP_TAIL,
    bytes: 2 * (WRAP_HEAD.length + code.length + WRAP_TAIL.length) + map.bytes + (inline?.bytes ?? 0),
    originalLine(line: number, column: number) {
      const origin = map.lookup(line - 1 - HEAD_LINES, Math.max(0, column - 1));
      return origin === undefined ? undefined : origin.line + 1;
    },
    authoredPosition(line: number, column: number) {
      const origin = map.lookup(line - 1 - HEAD_LINES, Math.max(0, column - 1));
      return origin === undefined ? undefined : inline?.locate(origin.line, origin.column);
    },
  });
}
