/**
 * Allow rules are parsed by the config schema with the egress proxy's own parser (issue 11):
 * `isohost config check` refuses what `serve` would refuse at start-up (`*.com`, `127.1`,
 * a port over 65535, a wildcard in the middle), naming the rule's path, and accepts every
 * form the proxy takes. Before, check passed `*.com` and serve then failed on it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import { cli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

vi.setConfig({ testTimeout: 60_000 });

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.dispose());

const configWith = (allow: string[]) => ({
  tenants: [{ id: 'a', storage: { namespace: 'a', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'a' }, network: { default: 'deny', allow } }],
});

describe('network.allow in the config schema', () => {
  it('should make `config check` refuse *.com with the rule path, as serve does', async () => {
    const file = join(dir.path, 'wild.json');
    await writeFile(file, JSON.stringify(configWith(['api.example.com', '*.com'])));
    const r = await cli(['config', 'check', file]);
    expect(r.code).not.toBe(0);
    expect(r.lastError?.error?.code).toBe('config_invalid');
    expect(r.stderr).toContain('tenants[0].network.allow[1]');
    expect(r.stderr).toMatch(/\*\.com.*two labels/);
  });

  it.each([
    ['127.1', /dotted quad/],
    ['api.example.com:99999', /port "99999"/],
    ['api.*.example.com', /wildcard/],
    ['[fd00::1', /\[v6\]/],
    ['10.0.0.1/8', /host bits/],
  ])('should refuse %s at validation, naming the path', (rule, reason) => {
    expect(() => validateConfig(configWith([rule]), dir.path)).toThrow(/tenants\[0\]\.network\.allow\[0\]/);
    expect(() => validateConfig(configWith([rule]), dir.path)).toThrow(reason);
  });

  it('should accept every rule form the proxy takes', () => {
    const rules = ['api.example.com', 'api.example.com:8443', '*.cdn.example.com', '*.cdn.example.com:443', '10.0.0.0/8', '127.0.0.1', '[::1]', '[fd00::]/8:443', 'fd00::1'];
    expect(validateConfig(configWith(rules), dir.path).tenants[0]!.network.allow).toEqual(rules);
  });
});
