/**
 * `npm ci --omit=dev && isohost serve` must work (issue 9: esbuild was imported at run
 * time but declared a devDependency). Every bare module that the shipped code imports —
 * src/, bin/, runtime-api/ — is a production dependency or a Node built-in.
 */
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) yield p;
  }
}

/** The package name of a bare specifier ('@scope/name/sub' → '@scope/name'). */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Module specifiers of static and dynamic imports (type-only imports are erased at run time). */
function importsOf(source: string): string[] {
  // Comments name modules in examples (`import("x")`); they import nothing.
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*import\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/^\s*export\s+(?!type\s)[^'"]*?\sfrom\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

describe('runtime dependencies', () => {
  const shipped = ['src', 'bin', 'runtime-api'].flatMap((d) => [...sources(join(ROOT, d))]);

  it('should find imports to check', () => {
    expect(shipped.length).toBeGreaterThan(40);
    expect(importsOf("import { build } from 'esbuild';\nimport type { X } from 'vitest';\nconst m = await import('yaml');")).toEqual(['esbuild', 'yaml']);
    expect(importsOf('/** import("x") */\n// import("y")\nexport {};')).toEqual([]);
  });

  it('should import only production dependencies and Node built-ins from shipped code', () => {
    const builtins = new Set(builtinModules);
    const wrong: string[] = [];
    for (const file of shipped) {
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = packageOf(spec);
        if (!Object.hasOwn(pkg.dependencies, name)) wrong.push(`${relative(ROOT, file)}: ${spec}${Object.hasOwn(pkg.devDependencies, name) ? ' (a devDependency)' : ''}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
