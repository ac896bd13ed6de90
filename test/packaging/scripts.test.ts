/**
 * The packaging shell scripts: shellcheck clean (skipped, saying why, without it), and
 * install.sh refusing, with one clear line, the two ways an offline install goes wrong:
 * a Node older than 24, and native modules that were not packed for this machine.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const SCRIPTS = ['scripts/pack-offline.sh', 'scripts/offline-install.sh'];

const noShellcheck = await run('shellcheck', ['--version']).then(
  () => undefined,
  () => 'shellcheck not installed (apt-get install -y shellcheck)',
);
if (noShellcheck !== undefined) console.warn(`skipping shellcheck: ${noShellcheck}`);

async function sh(file: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('sh', [file], { env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('packaging scripts', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('isohost-scripts-');
    await copyFile(join(ROOT, 'scripts/offline-install.sh'), join(dir.path, 'install.sh'));
  });
  afterAll(() => dir.dispose());

  it.skipIf(noShellcheck !== undefined)('should pass shellcheck', async () => {
    const r = await run('shellcheck', SCRIPTS.map((s) => join(ROOT, s))).catch((e: { stdout: string }) => e);
    expect(r.stdout).toBe('');
  });

  it('should refuse a Node older than 24 in install.sh', async () => {
    // a `node` on PATH that reports major version 20 to `node -p`
    const bin = join(dir.path, 'old-node');
    await mkdir(bin);
    await writeFile(join(bin, 'node'), '#!/bin/sh\ncase "$*" in *versions*) echo 20 ;; *) echo v20.0.0 ;; esac\n');
    await chmod(join(bin, 'node'), 0o755);
    const r = await sh(join(dir.path, 'install.sh'), { PATH: `${bin}:/usr/bin:/bin` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('install.sh: Node.js v20.0.0 found; isohost needs 24 or newer\n');
  });

  it('should refuse an unpacked tree whose native modules do not load here', async () => {
    // the script alone: no node_modules beside it
    const r = await sh(join(dir.path, 'install.sh'), { PATH: `${dirname(process.execPath)}:/usr/bin:/bin` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^install\.sh: the bundled native modules do not load on linux-\w+; pack on a machine of the same platform\n$/);
  });
});
