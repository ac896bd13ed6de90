import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRealmKeyStore, type RealmKeyStore } from '../../src/identity/realm-keys.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('realm keys', () => {
  let dir: { path: string; dispose: () => Promise<void> };
  let keys: RealmKeyStore;
  beforeEach(async () => {
    dir = await tempDir();
    keys = createRealmKeyStore(dir.path);
  });
  afterEach(() => dir.dispose());

  it('should create an Ed25519 key on first use, with a 0600 private file and a keys.json index', async () => {
    const { kid } = await keys.signingKey('bu-a');
    const realmDir = join(dir.path, 'realms', 'bu-a');
    const privateFile = join(realmDir, `${kid}.jwk.json`);
    expect((await stat(privateFile)).mode & 0o777).toBe(0o600);
    expect((await stat(realmDir)).mode & 0o777).toBe(0o700);
    const jwk = JSON.parse(await readFile(privateFile, 'utf8'));
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(typeof jwk.d).toBe('string');
    const index = JSON.parse(await readFile(join(realmDir, 'keys.json'), 'utf8'));
    expect(index.keys).toEqual([{ kid, created_at: expect.any(String), status: 'active' }]);
  });

  it('should use the RFC 7638 thumbprint as kid', async () => {
    const { keys: [pub] } = await keys.publicJwks('bu-a');
    expect(pub.kid).toBe(await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: pub.x }, 'sha256'));
    expect(pub.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('should publish only public members of non-retired keys', async () => {
    const first = await keys.signingKey('bu-a');
    const second = await keys.rotate('bu-a');
    const jwks = await keys.publicJwks('bu-a');
    expect(jwks.keys.map((k) => k.kid)).toEqual([first.kid, second.kid]);
    for (const k of jwks.keys) expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    await keys.retire('bu-a', first.kid);
    expect((await keys.publicJwks('bu-a')).keys.map((k) => k.kid)).toEqual([second.kid]);
  });

  it('should sign with the newest key after rotate and keep every private file 0600', async () => {
    const first = await keys.signingKey('bu-a');
    const rotated = await keys.rotate('bu-a');
    expect(rotated.kid).not.toBe(first.kid);
    expect((await keys.signingKey('bu-a')).kid).toBe(rotated.kid);
    const realmDir = join(dir.path, 'realms', 'bu-a');
    for (const f of (await readdir(realmDir)).filter((n) => n.endsWith('.jwk.json'))) {
      expect((await stat(join(realmDir, f))).mode & 0o777).toBe(0o600);
    }
  });

  it('should delete the private file of a retired key and mark it retired in the index', async () => {
    const first = await keys.signingKey('bu-a');
    await keys.rotate('bu-a');
    const retired = await keys.retire('bu-a', first.kid);
    expect(retired.status).toBe('retired');
    await expect(stat(join(dir.path, 'realms', 'bu-a', `${first.kid}.jwk.json`))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await keys.list('bu-a')).find((e) => e.kid === first.kid)?.status).toBe('retired');
  });

  it('should refuse to retire the current signing key or an unknown kid', async () => {
    const { kid } = await keys.signingKey('bu-a');
    await expect(keys.retire('bu-a', kid)).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(keys.retire('bu-a', '../../etc/passwd')).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('should refuse realm names that are not slugs before touching the filesystem', async () => {
    for (const bad of ['../x', 'A', '', 'a/b', 'x'.repeat(64)]) {
      await expect(keys.signingKey(bad)).rejects.toMatchObject({ code: 'invalid_request' });
    }
    await expect(readdir(dir.path)).resolves.toEqual([]);
  });

  it('should see a rotation made by another store (another process) once the recheck interval passes', async () => {
    const server = createRealmKeyStore(dir.path, { recheckMs: 0 });
    const cli = createRealmKeyStore(dir.path);
    const first = await server.signingKey('bu-a');
    const g1 = await server.refresh('bu-a');
    const rotated = await cli.rotate('bu-a');
    expect(await server.refresh('bu-a')).not.toBe(g1);
    expect((await server.signingKey('bu-a')).kid).toBe(rotated.kid);
    await cli.retire('bu-a', first.kid);
    expect((await server.publicJwks('bu-a')).keys.map((k) => k.kid)).toEqual([rotated.kid]);
  });

  it('should seed a realm once when first uses race', async () => {
    const other = createRealmKeyStore(dir.path);
    const [a, b, c] = await Promise.all([keys.signingKey('acme'), other.signingKey('acme'), keys.signingKey('acme')]);
    expect(a.kid).toBe(c.kid);
    expect(b.kid).toBe(a.kid);
    const files = (await readdir(join(dir.path, 'realms', 'acme'))).filter((n) => n.endsWith('.jwk.json'));
    expect(files).toEqual([`${a.kid}.jwk.json`]);
  });
});
