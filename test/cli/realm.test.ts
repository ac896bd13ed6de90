/**
 * `isohost realm rotate|retire` on the embedded store, through the real CLI. A kid is a
 * base64url thumbprint, so one in 32 begins with `-`: after `--` it is the KID, not an option
 * (two-nodes.test.ts once failed on a rotated kid "-T…" passed before `--`).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

vi.setConfig({ testTimeout: 60_000 });

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.dispose());

describe('isohost realm', () => {
  it('should rotate, then retire the key it replaced, the KID given after --', async () => {
    const first = await cli(['realm', 'rotate', 'bu-a', '--data', dir.path]);
    expect(first.code, first.stderr).toBe(0);
    const second = await cli(['realm', 'rotate', 'bu-a', '--data', dir.path]);
    expect(second.code, second.stderr).toBe(0);
    const old = (JSON.parse(first.stdout) as { kid: string }).kid;
    expect((JSON.parse(second.stdout) as { kid: string }).kid).not.toBe(old);
    const retired = await cli(['realm', 'retire', 'bu-a', '--data', dir.path, '--', old]);
    expect(retired.code, retired.stderr).toBe(0);
    expect(JSON.parse(retired.stdout)).toMatchObject({ realm: 'bu-a', kid: old, status: 'retired' });
  });

  it('should take a KID beginning with - after -- as the KID (not an option), and refuse one the realm lacks', async () => {
    const r = await cli(['realm', 'retire', 'bu-a', '--data', dir.path, '--', '-Tq3notakid']);
    expect(r.code).toBe(1);
    expect(r.lastError?.error).toMatchObject({ code: 'invalid_request', message: 'realm bu-a has no key -Tq3notakid' });
    const before = await cli(['realm', 'retire', 'bu-a', '-Tq3notakid', '--data', dir.path]);
    expect(before.code).toBe(2);
    expect(before.lastError?.error?.message).toContain("Unknown option '-T'");
  });
});
