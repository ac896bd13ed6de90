/**
 * Bundles `runtime-api/prelude/index.ts` into one script with esbuild, once per
 * process, at first use (issue 2: "bundled into the prelude at build or first
 * start"). The result only ever comes from our own sources, never from tenant
 * bytes (THREATS A6: snapshots contain compiled code).
 */
import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../../runtime-api/prelude/index.ts', import.meta.url));
let cached: string | undefined;

export function preludeSource(): string {
  if (cached !== undefined) return cached;
  const out = buildSync({
    entryPoints: [ENTRY],
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
  return cached;
}
