/** oidc-external realms: jwks_file, inline jwks and jwks_uri against a real loopback server. */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeySetUnavailable, remoteKeySource } from '../../src/identity/key-sources.ts';
import { createRealmVerifier, type RealmVerifier } from '../../src/identity/verifier.ts';
import { seconds, startRecordingServer, tenant, testKey, undiciFetchJwks, type RecordingServer, type TestKey } from '../helpers/identity-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

const T0 = 1_800_000_000_000;
const ISS = 'https://id.acme.example';
const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISS, aud: 'isohost', sub: 'bob', scope: 'apps:call', iat: seconds(T0), exp: seconds(T0) + 600, ...extra });
const sign = (key: TestKey, payload: JWTPayload = claims(), header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);

async function reason(verifier: RealmVerifier, token: string): Promise<string> {
  const err = await verifier.verify(token).then(() => undefined, (e: unknown) => e);
  expect(err).toMatchObject({ code: 'unauthenticated' });
  return (err as Error).message;
}

describe('external realm with a static key set', () => {
  let dir: { path: string; dispose: () => Promise<void> };
  let idp: TestKey;
  beforeEach(async () => {
    dir = await tempDir();
    idp = await testKey('ES256');
  });
  afterEach(() => dir.dispose());

  it('should verify with a jwks_file read at start, and keep working after the file changes', async () => {
    const file = join(dir.path, 'acme-jwks.json');
    await writeFile(file, JSON.stringify({ keys: [idp.publicJwk] }));
    const t = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks_file: file });
    const verifier = createRealmVerifier({ id: t.id, identity: t.identity, dataDir: dir.path, clock: () => T0 });
    await writeFile(file, 'garbage');
    await expect(verifier.verify(await sign(idp))).resolves.toMatchObject({ sub: 'bob', scope: ['apps:call'] });
  });

  it('should stop start-up on an unreadable or private jwks_file, and on jwks_uri without fetchJwks', async () => {
    const missing = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks_file: join(dir.path, 'nope.json') });
    expect(() => createRealmVerifier({ id: missing.id, identity: missing.identity, dataDir: dir.path })).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    const withPrivate = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks: { keys: [{ ...idp.publicJwk, d: 'AAAA' }] } });
    expect(() => createRealmVerifier({ id: withPrivate.id, identity: withPrivate.identity, dataDir: dir.path })).toThrow(/public keys only/);
    const remote = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks_uri: 'http://127.0.0.1:9/jwks' });
    expect(() => createRealmVerifier({ id: remote.id, identity: remote.identity, dataDir: dir.path })).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });

  it('should accept typ at+jwt, JWT or none, and refuse other explicit types (RFC 9068 choice)', async () => {
    const t = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks: { keys: [idp.publicJwk] } });
    const verifier = createRealmVerifier({ id: t.id, identity: t.identity, dataDir: dir.path, clock: () => T0 });
    for (const typ of ['at+jwt', 'application/at+jwt', 'JWT', 'jwt']) await expect(verifier.verify(await sign(idp, claims(), { typ }))).resolves.toBeDefined();
    const untyped = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: idp.kid }).sign(idp.privateKey);
    await expect(verifier.verify(untyped)).resolves.toBeDefined();
    for (const typ of ['logout+jwt', 'secevent+jwt', 'dpop+jwt', 'isohost+jwt']) {
      expect(await reason(verifier, await sign(idp, claims(), { typ }))).toBe('wrong token type');
    }
  });

  it('should pin the configured algorithm list', async () => {
    const rsa = await testKey('RS256');
    const t = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks: { keys: [idp.publicJwk, rsa.publicJwk] }, algorithms: ['ES256'] });
    const verifier = createRealmVerifier({ id: t.id, identity: t.identity, dataDir: dir.path, clock: () => T0 });
    await expect(verifier.verify(await sign(idp))).resolves.toBeDefined();
    expect(await reason(verifier, await sign(rsa))).toBe('algorithm not allowed');
  });
});

describe('external realm with jwks_uri', () => {
  let dir: { path: string; dispose: () => Promise<void> };
  let jwksServer: RecordingServer;
  let attackerServer: RecordingServer;
  let idp: TestKey;
  let clock: number;
  let verifier: RealmVerifier;
  const fetched: string[] = [];

  beforeEach(async () => {
    dir = await tempDir();
    idp = await testKey('ES256');
    jwksServer = await startRecordingServer({ keys: [idp.publicJwk] });
    attackerServer = await startRecordingServer();
    clock = T0;
    fetched.length = 0;
    const t = tenant('partner-acme', { provider: 'oidc-external', realm: 'acme', issuer: ISS, audience: 'isohost', jwks_uri: `${jwksServer.url}/jwks.json` });
    const fetchJwks = (url: string) => (fetched.push(url), undiciFetchJwks(url));
    verifier = createRealmVerifier({ id: t.id, identity: t.identity, dataDir: dir.path, fetchJwks, clock: () => clock });
  });
  afterEach(async () => {
    await jwksServer.close();
    await attackerServer.close();
    await dir.dispose();
  });

  it('should fetch the realm JWKS once and cache it', async () => {
    for (let i = 0; i < 5; i++) await expect(verifier.verify(await sign(idp, claims({ jti: randomUUID() })))).resolves.toMatchObject({ sub: 'bob' });
    expect(jwksServer.hits).toEqual(['/jwks.json']);
    expect(fetched).toEqual([`${jwksServer.url}/jwks.json`]);
  });

  it('should refetch at most once per 30 s under a flood of random kids', async () => {
    await verifier.verify(await sign(idp));
    const flood = async () => {
      const tokens = await Promise.all(Array.from({ length: 50 }, () => sign(idp, claims(), { kid: randomUUID() })));
      const reasons = await Promise.all(tokens.map((t) => reason(verifier, t)));
      expect(new Set(reasons)).toEqual(new Set(['unknown signing key']));
    };
    await flood();
    expect(jwksServer.hits).toHaveLength(1); // still inside the cooldown of the first fetch
    clock += 29_999;
    await flood();
    expect(jwksServer.hits).toHaveLength(1);
    clock += 1;
    await flood();
    expect(jwksServer.hits).toHaveLength(2); // one shared refetch for 50 concurrent misses
    clock += 10_000;
    await flood();
    expect(jwksServer.hits).toHaveLength(2);
  });

  it('should reject huge and path-like kids without fetching anything', async () => {
    await verifier.verify(await sign(idp));
    clock += 60_000;
    expect(await reason(verifier, await sign(idp, claims(), { kid: 'k'.repeat(10 * 1024) }))).toBe('unknown signing key');
    expect(jwksServer.hits).toHaveLength(1);
    expect(await reason(verifier, await sign(idp, claims(), { kid: '../../x' }))).toBe('unknown signing key');
    expect(jwksServer.hits).toHaveLength(2); // a bounded unknown kid costs one (rate-limited) refetch of the realm's own URL
  });

  it('should pick up a key the IdP rotated in: one refetch, then the new kid verifies', async () => {
    await verifier.verify(await sign(idp));
    const next = await testKey('ES256');
    jwksServer.serve({ keys: [idp.publicJwk, next.publicJwk] });
    const fresh = await sign(next);
    expect(await reason(verifier, fresh)).toBe('unknown signing key'); // inside the cooldown: no fetch yet
    expect(jwksServer.hits).toHaveLength(1);
    clock += 30_000;
    await expect(verifier.verify(fresh)).resolves.toMatchObject({ sub: 'bob' });
    expect(jwksServer.hits).toHaveLength(2);
    await expect(verifier.verify(await sign(idp, claims({ jti: 'x' })))).resolves.toBeDefined();
    expect(jwksServer.hits).toHaveLength(2);
  });

  it('should drop cached tokens of a key the IdP removed once the set is refetched', async () => {
    const old = await sign(idp);
    await verifier.verify(old);
    const next = await testKey('ES256');
    jwksServer.serve({ keys: [next.publicJwk] });
    clock += 30_000;
    await verifier.verify(await sign(next)); // unknown kid: refetch brings the new set
    expect(await reason(verifier, old)).toBe('unknown signing key');
  });

  it('should ignore jku, x5u and embedded jwk: the attacker server is never contacted', async () => {
    const attacker = await testKey('ES256');
    attackerServer.serve({ keys: [attacker.publicJwk] });
    clock += 60_000;
    const token = await sign(attacker, claims(), { jwk: attacker.publicJwk, jku: `${attackerServer.url}/jwks.json`, x5u: `${attackerServer.url}/x.pem` });
    expect(await reason(verifier, token)).toBe('unknown signing key');
    expect(attackerServer.hits).toEqual([]);
    expect(fetched.every((u) => u.startsWith(jwksServer.url))).toBe(true);
  });

  it('should answer key set unavailable when the IdP is down, and retry after the backoff', async () => {
    await jwksServer.close();
    const token = await sign(idp);
    expect(await reason(verifier, token)).toBe('key set unavailable');
    expect(await reason(verifier, token)).toBe('key set unavailable');
    expect(fetched).toHaveLength(1);
    clock += 5_000;
    expect(await reason(verifier, token)).toBe('key set unavailable');
    expect(fetched).toHaveLength(2);
  });

  it('should reject a JWKS response holding private keys', async () => {
    jwksServer.serve({ keys: [{ ...idp.publicJwk, d: 'AAAA' }] });
    expect(await reason(verifier, await sign(idp))).toBe('key set unavailable');
  });
});

describe('remoteKeySource', () => {
  it('should give up on a JWKS endpoint that never answers', async () => {
    const hits: string[] = [];
    const server = createServer((req) => void hits.push(req.url ?? '')); // accepts, never responds
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    try {
      const source = remoteKeySource(url, undiciFetchJwks, { timeoutMs: 200 });
      const started = Date.now();
      await expect(source.getKey({ alg: 'ES256', kid: 'k' }, { payload: '', signature: '' })).rejects.toBeInstanceOf(KeySetUnavailable);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(hits).toEqual(['/jwks.json']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
