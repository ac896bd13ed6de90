/** `isohost config check|schema` and `isohost tenant export|purge` through the real CLI. */
import { readFile, writeFile } from 'node:fs/promises';
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

/** `isohost config check` on a YAML file of `lines`. */
async function checkYaml(name: string, lines: string[]) {
  const file = join(dir.path, name);
  await writeFile(file, lines.join('\n'));
  return cli(['config', 'check', file]);
}

/** Checks that the file is refused: exit 2, `config_invalid`, and each of `errors` on stderr. */
async function expectRefused(name: string, lines: string[], errors: string[]) {
  const r = await checkYaml(name, lines);
  expect(r.code).toBe(2);
  for (const e of errors) expect(r.stderr).toContain(e);
  expect(r.lastError?.error?.code).toBe('config_invalid');
  return r;
}

describe('isohost config', () => {
  it('should accept the default config and a valid file', async () => {
    expect((await cli(['config', 'check'])).code).toBe(0);
    const file = join(dir.path, 'ok.json');
    await writeFile(file, JSON.stringify({ tenants: [{ id: 'a', storage: { namespace: 'a', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'a' } }] }));
    const r = await cli(['config', 'check', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, tenants: ['a'] });
  });

  it('should exit 2 with one path-named error per problem', async () => {
    await expectRefused(
      'bad.yaml',
      [
        'deployment: { mode: cloud, egres: deny-by-default }',
        'tenants:',
        '  - { id: a, storage: { namespace: x, isolation: schema }, identity: { provider: iam-internal, realm: r } }',
        '  - { id: a, storage: { namespace: x, isolation: database }, identity: { provider: iam-internal, realm: r }, limits: { memory_mb: -1 } }',
      ],
      ['deployment.mode: expected "on-premise" | "private-cloud"', 'deployment: unknown key "egres"', 'tenants[1].limits.memory_mb'],
    );
  });

  it('should refuse a compute priority on a shared tenant, and one it does not know', async () => {
    const r = await expectRefused(
      'priority.yaml',
      [
        'tenants:',
        '  - { id: a, storage: { namespace: a, isolation: schema }, identity: { provider: iam-internal, realm: a }, compute: { priority: idle } }',
        '  - { id: b, storage: { namespace: b, isolation: schema }, identity: { provider: iam-internal, realm: b }, compute: { isolation: process, priority: realtime } }',
        '  - { id: c, storage: { namespace: c, isolation: schema }, identity: { provider: iam-internal, realm: c }, compute: { isolation: process, priority: idle } }',
      ],
      ['tenants[0].compute.priority: priority applies to `isolation: process` only', 'tenants[1].compute.priority: expected "low" | "idle"'],
    );
    // A process tenant's `idle` is valid.
    expect(r.stderr).not.toContain('tenants[2]');
  });

  it('should report duplicate id, namespace and realm with their paths', async () => {
    await expectRefused(
      'dup.yaml',
      ['tenants:', '  - { id: a, storage: { namespace: x, isolation: schema }, identity: { provider: iam-internal, realm: r } }', '  - { id: a, storage: { namespace: x, isolation: database }, identity: { provider: iam-internal, realm: r } }'],
      ['tenants[1].id: duplicate id', 'tenants[1].storage.namespace: duplicate namespace', 'tenants[1].identity.realm: duplicate realm'],
    );
  });

  it('should print the JSON Schema of the config', async () => {
    const r = await cli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.tenants.type).toBe('array');
    expect(JSON.stringify(schema)).toContain('"database"');
  });
});

describe('isohost tenant export and purge', () => {
  it('should export one tenant as NDJSON and purge only that tenant', async () => {
    const notes = 'sample-miniapps/notes/notes.js';
    for (const tenant of ['business-unit-a', 'partner-acme']) {
      const r = await cli(['run', notes, '--data', dir.path, '--tenant', tenant, '--call', 'addNote', '--args', JSON.stringify({ text: `note of ${tenant}` })]);
      expect(r.code, r.stderr).toBe(0);
    }
    const out = join(dir.path, 'acme.ndjson');
    expect((await cli(['tenant', 'export', 'partner-acme', '--data', dir.path, '--out', out])).code).toBe(0);
    const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const data = lines.filter((l) => l.kind === 'data');
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ app: 'notes', value: { text: 'note of partner-acme' } });
    expect(lines[0]).toMatchObject({ kind: 'isohost-tenant-export', format: 1, tenant: 'partner-acme' });

    expect((await cli(['tenant', 'purge', 'partner-acme', '--data', dir.path])).code).toBe(2);
    expect((await cli(['tenant', 'purge', 'partner-acme', '--data', dir.path, '--yes'])).code).toBe(0);
    const acme = await cli(['tenant', 'export', 'partner-acme', '--data', dir.path]);
    expect(acme.stdout).not.toMatch(/"kind":"(app|bundle|data)"/);
    expect(acme.stdout).toMatch(/\{"kind":"end","entries":\d+\}\n$/);
    const bu = await cli(['tenant', 'export', 'business-unit-a', '--data', dir.path]);
    expect(bu.stdout).toContain('note of business-unit-a');
  });
});
