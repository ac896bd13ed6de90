/**
 * Bundles `runtime-api/prelude/index.ts` into one script with esbuild (issue 2: "bundled
 * into the prelude at build or first start"). The build takes ~150 ms, so its output is
 * kept in `node_modules/.cache/isohost/`, keyed by the sha256 of the prelude sources and
 * the esbuild version; any change to a source file is a new key. That folder belongs
 * to the installation, never to a tenant, and the output is only ever our own code
 * (THREATS A6: snapshots contain compiled code, so their input must be trusted).
 */
import { buildSync, version as esbuildVersion } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PRELUDE_DIR = fileURLToPath(new URL('../../runtime-api/prelude/', import.meta.url));
const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/isohost/', import.meta.url));
let cached: string | undefined;

function sourcesHash(): string {
  const hash = createHash('sha256').update(`esbuild ${esbuildVersion}\n`);
  const files = readdirSync(PRELUDE_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).sort();
  for (const f of files) hash.update(`${f}\n`).update(readFileSync(join(PRELUDE_DIR, f)));
  return hash.digest('hex').slice(0, 32);
}

export function preludeSource(): string {
  if (cached !== undefined) return cached;
  const file = join(CACHE_DIR, `prelude-${sourcesHash()}.js`);
  try {
    cached = readFileSync(file, 'utf8');
    return cached;
  } catch {
    // not built yet for these sources
  }
  const out = buildSync({
    entryPoints: [join(PRELUDE_DIR, 'index.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'neutral',
    target: 'es2024',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  cached = out.outputFiles[0]!.text;
  try {
    mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, cached, { mode: 0o644 });
    renameSync(tmp, file);
  } catch {
    // a read-only installation simply rebuilds at each start
  }
  return cached;
}
