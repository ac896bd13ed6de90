/**
 * THREATS A6 (code-cache / snapshot injection, isolated-vm CVE-2022-39266) and A8
 * (inspector). Both are properties of how isohost creates isolates and compiles code,
 * so they are pinned two ways: statically, over the source of the one file that may
 * touch isolated-vm, and dynamically, by planting hostile "caches" in a data_dir and
 * running a bundle through the real CLI on it.
 *
 * A6: `snapshot` is built in-process from our own prelude (runtime-api/prelude, cached
 * under node_modules/.cache — the installation's, never data_dir's); `cachedData` is
 * only ever what V8 produced for the same bundle in this process. No byte a tenant can
 * write (bundles are source text; storage values are JSON) is handed to either option.
 * A8: no isolate is created with `inspector: true`; nothing imports node:inspector or
 * calls createInspectorSession; the CLI never starts with --inspect.
 */
import { readFile, readdir, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ROOT } from '../helpers/cli.ts';
import { writeConfigFile } from '../helpers/security-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

async function sources(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.(ts|js)$/.test(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(path.slice(ROOT.length), await readFile(path, 'utf8'));
  }
  return out;
}

/** Source text without comments, so a sentence about a feature is not a use of it. */
const code = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

let src: Map<string, string>;
let bridge: string;
beforeAll(async () => {
  src = new Map([...(await sources('src')), ...(await sources('bin')), ...(await sources('runtime-api'))]);
  bridge = code(src.get('src/sandbox/bridge.ts')!);
});

describe('statically, over the sources', () => {
  it('should import isolated-vm in src/sandbox/bridge.ts only', () => {
    const importers = [...src].filter(([, text]) => /(from\s+|require\(|import\()\s*['"]isolated-vm['"]/.test(code(text))).map(([file]) => file);
    expect(importers).toEqual(['src/sandbox/bridge.ts']);
  });

  it('should give `snapshot` only the prelude built in-process (A6)', () => {
    expect(bridge.match(/createSnapshot\(/g)).toHaveLength(1);
    expect(bridge).toMatch(/createSnapshot\(\[\{ code: preludeSource, filename: 'isohost:prelude' \}\], SNAPSHOT_WARMUP\)/);
    // The warm-up script is a constant of the bridge, a template without substitutions:
    // nothing from outside the file reaches it.
    const warmup = /const SNAPSHOT_WARMUP = `([^`]*)`;/.exec(bridge);
    expect(warmup).not.toBeNull();
    expect(warmup![1]).not.toContain('${');
    // One place creates isolates, with exactly these options: no `inspector` (A8).
    const created = [...bridge.matchAll(/new ivm\.Isolate\(\{ (.*) \}\)/g)].map((m) => m[1]!);
    expect(created).toHaveLength(1);
    expect(created[0]!.split(/,\s*(?![^(]*\))/).map((o) => o.split(':')[0]!.trim())).toEqual(['memoryLimit', 'snapshot', 'onCatastrophicError']);
    const callers = [...src].filter(([, text]) => /prepareSnapshot\(/.test(code(text))).map(([file, text]) => [file, code(text).match(/prepareSnapshot\(([^)]*\)?)\)/g)]);
    expect(callers).toEqual([
      ['src/sandbox/bridge.ts', ['prepareSnapshot(preludeSource: string)']],
      ['src/sandbox/isolate-pool.ts', ['prepareSnapshot(preludeSource())']],
    ]);
  });

  it('should build the prelude from runtime-api and cache it under node_modules, never data_dir (A6)', () => {
    const build = code(src.get('src/sandbox/prelude-build.ts')!);
    expect(build).toMatch(/PRELUDE_DIR = fileURLToPath\(new URL\('\.\.\/\.\.\/runtime-api\/prelude\/', import\.meta\.url\)\)/);
    expect(build).toMatch(/CACHE_DIR = fileURLToPath\(new URL\('\.\.\/\.\.\/node_modules\/\.cache\/isohost\/', import\.meta\.url\)\)/);
    expect(build).not.toMatch(/data_dir|dataDir|config/);
  });

  it('should pass `cachedData` only what V8 produced here for the same bundle (A6)', () => {
    // Every value ever given to a cachedData slot: undefined, or the cache of a script
    // this process compiled itself.
    const assigned = [...bridge.matchAll(/cachedData(?:\?)?:\s*([^,;}\n]+)/g)].map((m) => m[1]!.trim());
    // (`cached` is an entry of the in-memory compile cache, filled only from `script.cachedData`.)
    expect(new Set(assigned)).toEqual(new Set(['ivm.ExternalCopy<ArrayBuffer>', 'script.cachedData', 'cached.cachedData']));
    expect(bridge).not.toMatch(/readFile|node:fs|ExternalCopy\(/);
  });

  it('should never enable the inspector (A8)', () => {
    for (const [file, text] of src) {
      const c = code(text);
      expect(c, file).not.toMatch(/inspector\s*:\s*true/);
      expect(c, file).not.toMatch(/createInspectorSession|['"]node:inspector['"]|['"]inspector['"]|--inspect/);
    }
  });
});

describe('dynamically, with hostile caches planted in data_dir (A6)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let configFile: string;
  const PAYLOAD = 'globalThis.PWNED = "planted";';

  beforeAll(async () => {
    dir = await tempDir('isohost-sec-cache-');
    configFile = writeConfigFile(dir.path, [{ id: 'planter', namespace: 'ns-planter', isolation: 'database' }]);
    // Everything a tenant or a careless operator might leave where a loader could look.
    const planted = ['prelude.js', 'snapshot.bin', 'code-cache.bin', join('.cache', 'isohost', 'prelude.js'), join('node_modules', '.cache', 'isohost', 'prelude.js')];
    for (const rel of planted) {
      await mkdir(join(dir.path, rel, '..'), { recursive: true });
      await writeFile(join(dir.path, rel), PAYLOAD);
    }
    // And the real cache file names, in data_dir.
    for (const name of await readdir(join(ROOT, 'node_modules', '.cache', 'isohost')).catch(() => [] as string[])) {
      await writeFile(join(dir.path, name), PAYLOAD);
    }
  });
  afterAll(() => dir.dispose());

  it('should run a bundle through `isohost run` with the real prelude, untouched by the planted files', async () => {
    const bundle = join(dir.path, 'probe.js');
    await writeFile(bundle, 'export function probe() { return [typeof globalThis.PWNED, typeof fc.storage.get, typeof URL, typeof globalThis.__isohost]; }');
    const res = await cli(['run', bundle, '--tenant', 'planter', '--call', 'probe', '--config', configFile]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(['undefined', 'function', 'function', 'undefined']);
  });
});
