/**
 * `isohost run` through the real CLI on the built-in default config (with --data in a
 * temp dir): samples for both default tenants, tenant separation, exit codes and the
 * closing error line of CONTRACT §5.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

// Each case spawns several CLI processes (node start, stores, egress proxy): allow for a loaded CI box.
vi.setConfig({ testTimeout: 120_000 });

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.dispose());

const PROFILE = 'sample-miniapps/profile/profile.js';
const NOTES = 'sample-miniapps/notes/notes.js';

describe('isohost run', () => {
  it('should run the profile sample for each default tenant and keep them apart', async () => {
    const set = await cli(['run', PROFILE, '--data', dir.path, '--tenant', 'business-unit-a', '--sub', 'alice', '--call', 'setProfile', '--args', '{"name":"Alice"}']);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ name: 'Alice' });
    const same = await cli(['run', PROFILE, '--data', dir.path, '--tenant', 'business-unit-a', '--sub', 'alice', '--call', 'getProfile']);
    expect(JSON.parse(same.stdout)).toMatchObject({ name: 'Alice' });
    const other = await cli(['run', PROFILE, '--data', dir.path, '--tenant', 'partner-acme', '--sub', 'alice', '--call', 'getProfile']);
    expect(other.code, other.stderr).toBe(0);
    expect(JSON.parse(other.stdout)).toBeNull();
    const otherUser = await cli(['run', PROFILE, '--data', dir.path, '--tenant', 'business-unit-a', '--sub', 'bob', '--call', 'getProfile']);
    expect(JSON.parse(otherUser.stdout)).toBeNull();
  });

  it('should run the notes sample with cursor paging and atomic batches', async () => {
    const add = await cli(['run', NOTES, '--data', dir.path, '--tenant', 'partner-acme', '--call', 'addNotes', '--args', '{"texts":["a","b","c"]}']);
    expect(add.code, add.stderr).toBe(0);
    const page1 = JSON.parse((await cli(['run', NOTES, '--data', dir.path, '--tenant', 'partner-acme', '--call', 'listNotes', '--args', '{"limit":2}'])).stdout);
    expect(page1.notes.map((n: { text: string }) => n.text)).toEqual(['a', 'b']);
    const page2 = JSON.parse((await cli(['run', NOTES, '--data', dir.path, '--tenant', 'partner-acme', '--call', 'listNotes', '--args', JSON.stringify({ limit: 2, cursor: page1.cursor })])).stdout);
    expect(page2.notes.map((n: { text: string }) => n.text)).toEqual(['c']);
    expect(page2.cursor).toBeNull();
    const bad = await cli(['run', NOTES, '--data', dir.path, '--tenant', 'partner-acme', '--call', 'addNotes', '--args', '{"texts":["ok",""]}']);
    expect(bad.code).toBe(1);
    expect(bad.lastError?.error?.code).toBe('miniapp_error');
    const count = await cli(['run', NOTES, '--data', dir.path, '--tenant', 'partner-acme', '--call', 'countNotes']);
    expect(count.stdout.trim()).toBe('3');
    const bu = await cli(['run', NOTES, '--data', dir.path, '--tenant', 'business-unit-a', '--call', 'countNotes']);
    expect(bu.stdout.trim()).toBe('0');
  });

  it('should end with a JSON error line and exit 1 when the method throws', async () => {
    const r = await cli(['run', PROFILE, '--data', dir.path, '--tenant', 'business-unit-a', '--call', 'getProfile']);
    expect(r.code).toBe(1);
    expect(r.lastError?.error?.code).toBe('miniapp_error');
    expect(r.lastError?.error?.message).toMatch(/signed-in user.*bundle line \d+/);
    expect(r.stdout).toBe('');
  });

  it('should exit 2 on usage errors', async () => {
    for (const args of [
      ['run', PROFILE, '--call', 'getProfile'],
      ['run', PROFILE, '--tenant', 'business-unit-a'],
      ['run', PROFILE, '--tenant', 'business-unit-a', '--call', 'x', '--args', '{not json'],
      ['run', PROFILE, '--tenant', 'nobody', '--call', 'x', '--data', dir.path],
      ['run', PROFILE, '--tenant', 'business-unit-a', '--call', 'x', '--bogus'],
      ['frobnicate'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.lastError?.error?.code).toBe('invalid_request');
    }
  });

  it('should exit 2 with path-named errors on a bad config', async () => {
    const file = join(dir.path, 'bad.yaml');
    await writeFile(file, 'tenants:\n  - id: a\n    storage: { namespace: a, isolation: shared }\n    identity: { provider: iam-internal, realm: a }\n');
    const r = await cli(['run', PROFILE, '--config', file, '--tenant', 'a', '--call', 'getProfile']);
    expect(r.code).toBe(2);
    expect(r.lastError?.error).toMatchObject({ code: 'config_invalid' });
    expect(r.lastError?.error?.message).toContain('tenants[0].storage.isolation: expected "schema" | "database"');
  });

  it('should reject bad bundles with a coded error and write nothing', async () => {
    const cases: [string, string | Buffer, RegExp][] = [
      ['syntax.js', 'export function f( {', /does not compile/],
      ['imports.js', 'import x from "fs"; export function f() { return x }', /imports "fs"/],
      ['noexport.js', 'const x = 1;', /exports no function/],
      ['latin1.js', Buffer.from([0x65, 0x78, 0x70, 0xff, 0xfe]), /not valid UTF-8/],
      ['throws.js', 'throw new Error("boom at load"); export function f() {}', /failed while loading/],
    ];
    for (const [name, body, re] of cases) {
      const file = join(dir.path, name);
      await writeFile(file, body);
      const r = await cli(['run', file, '--data', dir.path, '--tenant', 'business-unit-a', '--call', 'f']);
      expect(r.code, name).toBe(1);
      expect(r.lastError?.error?.code, name).toBe('invalid_request');
      expect(r.lastError?.error?.message, name).toMatch(re);
    }
    const big = join(dir.path, 'big.js');
    await writeFile(big, 'export function f() {}\n//' + 'x'.repeat(5 * 1024 * 1024));
    const r = await cli(['run', big, '--data', dir.path, '--tenant', 'business-unit-a', '--call', 'f']);
    expect(r.lastError?.error?.code).toBe('payload_too_large');
  });
});
