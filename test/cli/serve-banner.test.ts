/**
 * The start-up banner (issue 11): it suggests `isohost token` (through the local bin, never
 * a bare `npx isohost`, which would ask the public registry) only for an iam-internal
 * tenant, and for a config whose tenants all use an external realm it says where a token
 * comes from instead. README and sample READMEs use the local bin too.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startServe } from '../helpers/http-cli.ts';
import { tempDir } from '../helpers/tmp.ts';

vi.setConfig({ testTimeout: 60_000 });

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.dispose());

const external = (id: string) => {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return {
    id,
    storage: { namespace: id, isolation: 'database' },
    identity: { provider: 'oidc-external', realm: id, issuer: 'https://id.partner.example', audience: 'isohost', jwks: { keys: [{ ...jwk, kid: 'k1', alg: 'EdDSA', use: 'sig' }] } },
  };
};
const internal = (id: string) => ({ id, storage: { namespace: id, isolation: 'schema' }, identity: { provider: 'iam-internal', realm: id } });

async function bannerOf(name: string, tenants: unknown[]): Promise<string> {
  const cfg = join(dir.path, `${name}.yaml`);
  await writeFile(cfg, stringify({ deployment: { listen: { host: '127.0.0.1', port: 0 } }, tenants }));
  const serve = await startServe(['--config', cfg, '--data', join(dir.path, name)]);
  try {
    await new Promise((r) => setTimeout(r, 200)); // the banner is one write, right after "serving on"
    return serve.stdout();
  } finally {
    await serve.stop();
  }
}

describe('serve banner', () => {
  it('should not suggest isohost token when every tenant has an external realm', async () => {
    const banner = await bannerOf('ext', [external('partner')]);
    expect(banner).not.toMatch(/isohost(\.js)? token/);
    expect(banner).toContain('from its identity provider (https://id.partner.example, audience isohost)');
  });

  it('should suggest isohost token through the local bin for an iam-internal tenant', async () => {
    const banner = await bannerOf('int', [external('partner'), internal('unit')]);
    expect(banner).toMatch(/(node bin\/isohost\.js|npx --no-install isohost) token --config \S+ --tenant unit /);
    expect(banner).not.toMatch(/npx isohost/);
  });
});

describe('docs', () => {
  it('should never tell users to run a bare `npx isohost`', () => {
    const root = new URL('../../', import.meta.url);
    const samples = readdirSync(new URL('sample-miniapps/', root)).map((d) => `sample-miniapps/${d}/README.md`);
    const docs = readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
    const offenders: string[] = [];
    for (const file of ['README.md', ...docs, ...samples]) {
      let text: string;
      try {
        text = readFileSync(new URL(file, root), 'utf8');
      } catch {
        continue; // a sample without a README
      }
      text.split('\n').forEach((line, i) => {
        // "a bare `npx isohost` …" in prose, explaining why not, is quoted and allowed.
        if (/npx isohost\b/.test(line) && !/`npx isohost`/.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
