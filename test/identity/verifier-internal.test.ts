/** THREATS §C 19–27 against an iam-internal realm: real keys on disk, real signed JWTs. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, base64url, type JWTPayload } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRealmKeyStore, type RealmKeyStore } from '../../src/identity/realm-keys.ts';
import { mintToken } from '../../src/identity/tokens.ts';
import { createRealmVerifier, type RealmVerifier } from '../../src/identity/verifier.ts';
import { craftToken, hs256With, seconds, startRecordingServer, testKey, type RecordingServer } from '../helpers/identity-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

const T0 = 1_800_000_000_000;
const ISS = 'isohost:realm:bu-a';
const AUD = 'business-unit-a';

describe('internal realm verifier', () => {
  let dir: { path: string; dispose: () => Promise<void> };
  let keys: RealmKeyStore;
  let clock: number;
  let verifier: RealmVerifier;
  let server: RecordingServer;

  beforeEach(async () => {
    dir = await tempDir();
    keys = createRealmKeyStore(dir.path);
    clock = T0;
    verifier = createRealmVerifier({ id: AUD, identity: { provider: 'iam-internal', realm: 'bu-a' }, dataDir: dir.path, keys, clock: () => clock });
    server = await startRecordingServer();
  });
  afterEach(async () => {
    await server.close();
    await dir.dispose();
  });

  const mint = (opts: { sub?: string; scope?: string; ttl?: string | number } = {}) =>
    mintToken({ realm: 'bu-a', issuer: ISS, audience: AUD, keys }, { sub: 'alice', scope: 'apps:call', now: () => clock, ...opts });

  /** Signs arbitrary claims with the realm's real signing key. */
  async function signWithRealmKey(payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    const { kid, key } = await keys.signingKey('bu-a');
    return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'isohost+jwt', ...header }).sign(key);
  }
  const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISS, aud: AUD, sub: 'alice', iat: seconds(T0), exp: seconds(T0) + 3600, ...extra });

  async function rejection(token: string): Promise<string> {
    const err = await verifier.verify(token).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ name: 'IsohostError', code: 'unauthenticated' });
    const message = (err as Error).message;
    for (const part of token.split('.')) if (part.length > 8) expect(message).not.toContain(part);
    return message;
  }

  it('should verify a token minted in its own realm', async () => {
    const verified = await verifier.verify(await mint({ scope: 'apps:call apps:deploy' }));
    expect(verified.sub).toBe('alice');
    expect(verified.scope).toEqual(['apps:call', 'apps:deploy']);
    expect(verified.claims).toMatchObject({ iss: ISS, aud: AUD });
  });

  it('should reject a forged signature', async () => {
    const token = await mint();
    const [h, p, s] = token.split('.');
    const sig = base64url.decode(s);
    sig[10] ^= 0xff;
    expect(await rejection(`${h}.${p}.${base64url.encode(sig)}`)).toBe('signature invalid');
    // A payload edited under the real signature fails the same way.
    const forged = base64url.encode(JSON.stringify({ ...claims(), sub: 'root', scope: 'apps:deploy' }));
    expect(await rejection(`${h}.${forged}.${s}`)).toBe('signature invalid');
  });

  it('should reject a token signed by another key claiming the realm kid', async () => {
    const attacker = await testKey('EdDSA');
    const { kid } = await keys.signingKey('bu-a');
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'isohost+jwt' }).sign(attacker.privateKey);
    expect(await rejection(token)).toBe('signature invalid');
  });

  it('should reject alg none (hand-crafted)', async () => {
    const { kid } = await keys.signingKey('bu-a');
    for (const alg of ['none', 'None', 'NONE']) {
      expect(await rejection(craftToken({ alg, kid, typ: 'isohost+jwt' }, claims()))).toBe('algorithm not allowed');
    }
    expect(await rejection(craftToken({ alg: 'none', typ: 'isohost+jwt' }, claims(), () => Buffer.from('x')))).toBe('algorithm not allowed');
  });

  it('should reject HS256 keyed with the realm public key (algorithm confusion, RFC 8725 §2.1)', async () => {
    const { keys: [pub] } = await keys.publicJwks('bu-a');
    for (const secret of [Buffer.from(pub.x, 'base64url'), JSON.stringify(pub), pub.x]) {
      expect(await rejection(craftToken({ alg: 'HS256', kid: pub.kid, typ: 'isohost+jwt' }, claims(), hs256With(secret)))).toBe('algorithm not allowed');
    }
  });

  it('should reject a wrong issuer and a wrong audience', async () => {
    expect(await rejection(await signWithRealmKey(claims({ iss: 'isohost:realm:acme' })))).toBe('wrong issuer');
    expect(await rejection(await signWithRealmKey(claims({ aud: 'partner-acme' })))).toBe('wrong audience');
    expect(await rejection(await signWithRealmKey(claims({ aud: ['partner-acme', 'other'] })))).toBe('wrong audience');
  });

  it('should accept an expired token just inside the 60 s skew and reject it at the boundary', async () => {
    const token = await mint({ ttl: 60 });
    const exp = seconds(T0) + 60;
    clock = (exp + 59) * 1000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'alice' });
    clock = (exp + 60) * 1000;
    expect(await rejection(token)).toBe('token expired');
    clock = (exp + 3600) * 1000;
    expect(await rejection(token)).toBe('token expired');
  });

  it('should not serve a cached token past its exp', async () => {
    const token = await mint({ ttl: 60 });
    await verifier.verify(token); // cached now
    clock = (seconds(T0) + 60 + 60) * 1000;
    expect(await rejection(token)).toBe('token expired');
  });

  it('should accept nbf up to 60 s ahead and reject it one second further', async () => {
    await expect(verifier.verify(await signWithRealmKey(claims({ nbf: seconds(T0) + 60 })))).resolves.toBeDefined();
    expect(await rejection(await signWithRealmKey(claims({ nbf: seconds(T0) + 61 })))).toBe('token not yet valid');
  });

  it('should reject a token without exp, iss, aud or sub', async () => {
    for (const missing of ['exp', 'iss', 'aud', 'sub'] as const) {
      const payload = claims();
      delete payload[missing];
      expect(await rejection(await signWithRealmKey(payload))).toBe(`token has no "${missing}" claim`);
    }
  });

  it('should reject a non-string or empty sub', async () => {
    expect(await rejection(await signWithRealmKey(claims({ sub: '' })))).toBe('invalid "sub" claim');
    expect(await rejection(await signWithRealmKey({ ...claims(), sub: 42 } as unknown as JWTPayload))).toBe('invalid "sub" claim');
  });

  it('should reject an ID-token-like typ JWT, a missing typ and other types (typ pinned)', async () => {
    for (const typ of ['JWT', 'at+jwt', 'application/jwt', 'logout+jwt']) {
      expect(await rejection(await signWithRealmKey(claims(), { typ }))).toBe('wrong token type');
    }
    const { kid, key } = await keys.signingKey('bu-a');
    const untyped = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid }).sign(key);
    expect(await rejection(untyped)).toBe('wrong token type');
    await expect(verifier.verify(await signWithRealmKey(claims(), { typ: 'application/isohost+jwt' }))).resolves.toBeDefined();
  });

  it('should ignore jku, x5u and an embedded jwk: an attacker key fails and nothing is fetched', async () => {
    const attacker = await testKey('EdDSA');
    server.serve({ keys: [attacker.publicJwk] });
    const token = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'EdDSA', kid: attacker.kid, typ: 'isohost+jwt', jwk: attacker.publicJwk as never, jku: `${server.url}/jwks.json`, x5u: `${server.url}/cert.pem` })
      .sign(attacker.privateKey);
    expect(await rejection(token)).toBe('unknown signing key');
    expect(server.hits).toEqual([]);
  });

  it('should only look kids up in the realm set: path-like, huge and absent kids fail, no file is touched', async () => {
    const { key } = await keys.signingKey('bu-a');
    const sign = (kid: string | undefined) =>
      new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', typ: 'isohost+jwt', ...(kid === undefined ? {} : { kid }) }).sign(key);
    const before = await readdir(join(dir.path, 'realms', 'bu-a'));
    for (const kid of ['../../x', '../bu-a/keys', 'x'.repeat(10 * 1024), '', undefined]) {
      expect(await rejection(await sign(kid))).toBe('unknown signing key');
    }
    expect(await readdir(join(dir.path, 'realms', 'bu-a'))).toEqual(before);
    expect(await readdir(join(dir.path, 'realms'))).toEqual(['bu-a']);
  });

  it('should reject garbage and oversized tokens as malformed without echoing them', async () => {
    expect(await rejection('not-a-jwt')).toBe('malformed token');
    expect(await rejection('a.b.c')).toBe('malformed token');
    expect(await rejection('')).toBe('malformed token');
    expect(await rejection(`${'a'.repeat(20_000)}.b.c`)).toBe('token too large');
  });

  it('should rotate: old tokens verify until the old key is retired, new tokens carry the new kid', async () => {
    const oldToken = await mint();
    const oldKid = (await keys.signingKey('bu-a')).kid;
    await verifier.verify(oldToken); // cached under the pre-rotation key set
    const rotated = await keys.rotate('bu-a');
    const newToken = await mint();
    expect(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url').toString()).kid).toBe(rotated.kid);
    await expect(verifier.verify(oldToken)).resolves.toMatchObject({ sub: 'alice' });
    await expect(verifier.verify(newToken)).resolves.toMatchObject({ sub: 'alice' });
    await keys.retire('bu-a', oldKid);
    expect(await rejection(oldToken)).toBe('unknown signing key');
    await expect(verifier.verify(newToken)).resolves.toMatchObject({ sub: 'alice' });
  });
});
