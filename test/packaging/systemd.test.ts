/**
 * deploy/systemd/isohost.service: `systemd-analyze verify` (Debian's systemd package)
 * on a copy whose ExecStart points at this machine's node and this checkout, so the
 * binaries it names exist; no warnings allowed (verify only warns on an unknown or
 * unparsable directive). Also the sandboxing directives the issue names, the absence
 * of MemoryDenyWriteExecute (V8's JIT), and the offline exposure score.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const UNIT = readFileSync(join(ROOT, 'deploy/systemd/isohost.service'), 'utf8');
const example = parse(readFileSync(join(ROOT, 'deploy/isohost.example.yaml'), 'utf8'));

/** `Key=value` lines of the unit (comments dropped); a key may repeat. */
function directives(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}
const d = directives(UNIT);
const values = (key: string) => d.filter(([k]) => k === key).map(([, v]) => v);

async function analyzer(): Promise<string | undefined> {
  try {
    await run('systemd-analyze', ['--version']);
    return undefined;
  } catch (err) {
    return `systemd-analyze not available (${(err as NodeJS.ErrnoException).code}); apt-get install -y systemd`;
  }
}
const missing = await analyzer();
if (missing !== undefined) console.warn(`skipping systemd-analyze checks: ${missing}`);

/** The unit with the install paths replaced by ones that exist here. */
function localCopy(text: string): string {
  return text
    .replace('ExecStart=/usr/bin/node /opt/isohost/', `ExecStart=${process.execPath} ${ROOT}`)
    .replace('WorkingDirectory=/opt/isohost', `WorkingDirectory=${ROOT.replace(/\/$/, '')}`);
}

describe('deploy/systemd/isohost.service', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('isohost-systemd-');
  });
  afterAll(() => dir.dispose());

  async function verify(text: string): Promise<{ code: number; stderr: string }> {
    const file = join(dir.path, 'isohost.service');
    await writeFile(file, text);
    try {
      const r = await run('systemd-analyze', ['verify', file]);
      return { code: 0, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, stderr: e.stderr };
    }
  }

  it.skipIf(missing !== undefined)('should pass systemd-analyze verify with no warning', async () => {
    const copy = localCopy(UNIT);
    expect(copy).not.toContain('/opt/isohost/bin');
    const r = await verify(copy);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.skipIf(missing !== undefined)('should be caught by the same check when a directive is wrong or the binary is missing', async () => {
    const typo = await verify(localCopy(UNIT).replace('ProtectSystem=strict', 'ProtectSystem=strickt'));
    expect(typo.stderr).toMatch(/protect system value/i);
    const absent = await verify(localCopy(UNIT).replace(`ExecStart=${process.execPath}`, 'ExecStart=/nonexistent/node'));
    expect(absent.code).not.toBe(0);
    expect(absent.stderr).toMatch(/\/nonexistent\/node is not executable/);
  });

  it.skipIf(missing !== undefined)('should score a low exposure in systemd-analyze security', async () => {
    const file = join(dir.path, 'isohost.service');
    await writeFile(file, localCopy(UNIT));
    const r = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', file]).catch((e: { stdout: string }) => e);
    const score = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout)?.[1]);
    console.log(`systemd-analyze security exposure: ${score}`);
    // 0 = fully locked down, 10 = unprotected; systemd calls ≤ 2 "OK"
    expect(score).toBeLessThanOrEqual(2);
  });

  it('should carry the sandboxing directives and run serve on the example config data_dir', () => {
    const expected: Record<string, string> = {
      DynamicUser: 'yes',
      StateDirectory: 'isohost',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      NoNewPrivileges: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
      IPAddressDeny: 'any',
      IPAddressAllow: 'localhost',
      CapabilityBoundingSet: '',
      Restart: 'on-failure',
      ExecReload: '/bin/kill -HUP $MAINPID',
      KillSignal: 'SIGTERM',
    };
    for (const [k, v] of Object.entries(expected)) expect(values(k), k).toEqual([v]);
    expect(values('SystemCallFilter')).toContain('@system-service');
    expect(Number.parseInt(values('TimeoutStopSec')[0] ?? '', 10)).toBeGreaterThan(10);
    expect(values('ExecStart')).toEqual(['/usr/bin/node /opt/isohost/bin/isohost.js serve --config /etc/isohost/isohost.yaml']);
    // StateDirectory=isohost is /var/lib/isohost: the example config's data_dir
    expect(example.deployment.data_dir).toBe('/var/lib/isohost');
  });

  it('should leave MemoryDenyWriteExecute unset, saying why', () => {
    expect(values('MemoryDenyWriteExecute')).toEqual([]);
    expect(UNIT).toMatch(/# MemoryDenyWriteExecute= is deliberately NOT set: V8/);
  });
});
