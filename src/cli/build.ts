/**
 * `isohost build SRC [--out FILE]`: a mini-app's TypeScript (or JavaScript) source to the
 * one self-contained ES module an upload takes (CONTRACT §2), with an inline source map so
 * a thrown error names `src/file.ts:line` instead of a bundle line.
 *
 * The esbuild flags are the ones a bundle needs to pass upload and run in an isolate:
 * `--bundle` (no `import` may remain), `--format=esm` (exports are the methods),
 * `--platform=neutral` (no Node built-ins, no browser globals assumed). A neutral build
 * picks no package entry point by default, so `mainFields` and `conditions` follow what
 * workerd-style runtimes use (wrangler: `workerd, worker, browser` conditions; `browser,
 * module, main` fields): packages then resolve to their fetch/web-crypto builds.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { build, type Message } from 'esbuild';
import { IsohostError } from '../errors.ts';
import { parse, UsageError } from './args.ts';

/** What one build wrote. */
export interface Built {
  /** The bundle file, as given (or the default `dist/NAME.js`). */
  out: string;
  bytes: number;
  /** Hex sha256 of the bundle's bytes (the server's version is its first 16 digits). */
  sha256: string;
}

/** The esbuild options every mini-app build uses (exported for the README's test and `dev`). */
export const BUNDLE_FLAGS = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2023',
  mainFields: ['browser', 'module', 'main'],
  conditions: ['worker', 'browser'],
  sourcemap: 'inline',
  // The map serves error positions only; the sources themselves would double the upload.
  sourcesContent: false,
  charset: 'utf8',
} as const;

/** The directory paths in the source map are relative to: the nearest package.json's, else the cwd. */
export function projectRoot(src: string): string {
  for (let dir = dirname(src); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

function describe(m: Message): string {
  const where = m.location === null ? '' : `${m.location.file}:${m.location.line}:${m.location.column + 1}: `;
  return `${where}${m.text}`;
}

/**
 * Bundles `src` into `out`. esbuild's errors become one `invalid_request` naming the
 * file, line and column of the first (and how many more there are).
 *
 * @example
 * const { out, sha256 } = await buildBundle('src/index.ts', 'dist/app.js');
 */
export async function buildBundle(src: string, out: string): Promise<Built> {
  const entry = resolve(src);
  if (!existsSync(entry)) throw new UsageError(`cannot read ${src}: no such file`);
  const root = projectRoot(entry);
  let text: string;
  try {
    const result = await build({
      ...BUNDLE_FLAGS,
      mainFields: [...BUNDLE_FLAGS.mainFields],
      conditions: [...BUNDLE_FLAGS.conditions],
      entryPoints: [entry],
      absWorkingDir: root,
      // Not written by esbuild: its place decides how the map names sources (relative to
      // it), so it sits at the project root and sources read `src/index.ts`.
      outfile: join(root, 'bundle.js'),
      write: false,
      logLevel: 'silent',
    });
    text = result.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors;
    if (errors === undefined || errors.length === 0) throw err;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
    throw new IsohostError('invalid_request', `build failed: ${describe(errors[0]!)}${more}`, {
      details: { errors: errors.slice(0, 20).map((m) => ({ file: m.location?.file, line: m.location?.line, column: m.location ? m.location.column + 1 : undefined, text: m.text })) },
    });
  }
  const bytes = Buffer.from(text, 'utf8');
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, bytes);
  return { out, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** `dist/NAME.js` beside the current directory, NAME from the source file. */
export function defaultOut(src: string): string {
  return join('dist', `${basename(src, extname(src))}.js`);
}

export async function buildCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' } }, 1);
  const src = positionals[0];
  if (src === undefined) throw new UsageError('usage: isohost build SRC [--out FILE]');
  const out = values.out ?? defaultOut(src);
  if (relative(resolve(out), resolve(src)) === '') throw new UsageError('--out must not be the source file');
  const built = await buildBundle(src, out);
  process.stdout.write(JSON.stringify(built) + '\n');
  return 0;
}
