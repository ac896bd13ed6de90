/**
 * Upload refuses a bundle that would fail on every call (issue 12): a mini-app has no
 * module loader, so `import()` and `require(…)` can only throw, and a CommonJS-only bundle
 * (`module.exports = …`, `exports.x = …`, no `export`) exports no method. A validation
 * launch does not see these: `import()` compiles, and CommonJS code runs without error.
 *
 * The check parses the bundle with esbuild (a runtime dependency already, for `isohost
 * build`) instead of searching its text, so the words in strings, comments and regular
 * expressions never count, and a parameter named `require` is not the global:
 * - a literal specifier (`import("x")`, `require("x")`) reaches esbuild's resolver with its
 *   kind (`dynamic-import`, `require-call`, `require-resolve`);
 * - a computed one (`import(x)`, `require(x)`) is compiled by esbuild to a call of its
 *   `__require` shim (with `dynamic-import` marked unsupported, `import(x)` becomes
 *   `__require(x)` too); `typeof require` checks use the shim but do not call it;
 * - esbuild marks a module `format: "cjs"` when it uses `module`/`exports` and has no ESM syntax.
 */
import { build, type Metafile } from 'esbuild';
import { IsohostError } from '../errors.ts';

const SOURCE_NAME = 'bundle.js';
const FIX = 'bundle its dependencies into one ES module (isohost build does: esbuild --bundle --format=esm --platform=neutral)';

/** Import kinds esbuild reports that a mini-app can never serve. */
const REFUSED_KINDS: Record<string, string> = {
  'dynamic-import': 'import()',
  'require-call': 'require()',
  'require-resolve': 'require.resolve()',
};

/**
 * Resolves when the bundle has none of the refused forms; rejects with `invalid_request`
 * naming the first one found. Syntax errors are left to the validation launch, which
 * reports them with their line.
 *
 * @example
 * await checkBundleRules('export const f = () => import("x")'); // rejects: import() of "x"
 */
export async function checkBundleRules(source: string): Promise<void> {
  const refused: { kind: string; path: string }[] = [];
  let metafile: Metafile;
  let output: string;
  try {
    const result = await build({
      stdin: { contents: source, loader: 'js', sourcefile: SOURCE_NAME },
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'neutral',
      logLevel: 'silent',
      supported: { 'dynamic-import': false },
      plugins: [
        {
          name: 'isohost-refused-imports',
          setup(b) {
            // Everything is external: nothing is read from disk, every specifier is only recorded.
            b.onResolve({ filter: /.*/ }, (args) => {
              if (REFUSED_KINDS[args.kind] !== undefined) refused.push({ kind: args.kind, path: args.path });
              return { path: args.path, external: true };
            });
          },
        },
      ],
    });
    metafile = result.metafile;
    output = result.outputFiles[0]?.text ?? '';
  } catch {
    return; // does not parse: the validation launch refuses it with the compile error and line
  }
  const first = refused[0];
  if (first !== undefined) {
    throw new IsohostError('invalid_request', `bundle uses ${REFUSED_KINDS[first.kind]} of "${first.path.slice(0, 100)}": a mini-app has no module loader, so this fails on every call; ${FIX}`);
  }
  if (metafile.inputs[SOURCE_NAME]?.format === 'cjs') {
    throw new IsohostError('invalid_request', `bundle is CommonJS (module.exports / exports.x) with no ES module export: a mini-app's methods are its ES module exports; ${FIX}`);
  }
  // `__require(` is esbuild's shim being called: a user identifier of that name would have been renamed.
  if (output.includes('__require(')) {
    throw new IsohostError('invalid_request', `bundle calls require() or import() with a computed specifier: a mini-app has no module loader, so this fails on every call; ${FIX}`);
  }
}
