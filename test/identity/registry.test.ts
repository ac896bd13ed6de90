/** Cross-tenant isolation through the registry: the route picks the verifier, never the token. */
import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIdentity, type Identity } from '../../src/identity/registry.ts';
import { hasScope, sessionClaims } from '../../src/identity/verifier.ts';
import { seconds, tenant, testKey, type TestKey } from '../helpers/identity-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

const T0 = 1_800_000_000_000;
const SHARED_ISS = 'https://idp.shared.example';

describe('identity registry', () => {
  let dir: { path: string; dispose: () => Promise<void> };
  let idp: TestKey;
  let identity: Identity;

  beforeEach(async () => {
    dir = await tempDir();
    idp = await testKey('ES256');
    const jwks = { keys: [idp.publicJwk] };
    identity = createIdentity({
      dataDir: dir.path,
      clock: () => T0,
      tenants: [
        tenant('business-unit-a', { provider: 'iam-internal', realm: 'bu-a' }),
        tenant('business-unit-b', { provider: 'iam-internal', realm: 'bu-b' }),
        // Two internal realms configured with the same issuer and audience: only the keys differ.
        tenant('twin-one', { provider: 'iam-internal', realm: 'twin-1', issuer: 'https://iam.example', audience: 'isohost' }),
        tenant('twin-two', { provider: 'iam-internal', realm: 'twin-2', issuer: 'https://iam.example', audience: 'isohost' }),
        // Two external realms on one IdP: same issuer and keys, different audiences.
        tenant('ext-a', { provider: 'oidc-external', realm: 'ext-a', issuer: SHARED_ISS, audience: 'api-a', jwks }),
        tenant('ext-b', { provider: 'oidc-external', realm: 'ext-b', issuer: SHARED_ISS, audience: 'api-b', jwks }),
      ],
    });
  });
  afterEach(() => dir.dispose());

  const reason = async (tenantId: string, token: string) => {
    const err = await identity.verifierFor(tenantId).verify(token).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'unauthenticated' });
    return (err as Error).message;
  };

  it('should verify a token in its own tenant', async () => {
    const token = await identity.mint('business-unit-a', { sub: 'alice', scope: 'apps:call' });
    const verified = await identity.verifierFor('business-unit-a').verify(token);
    expect(verified).toMatchObject({ sub: 'alice', scope: ['apps:call'] });
    expect(hasScope(verified, 'apps:call')).toBe(true);
    expect(hasScope(verified, 'apps:deploy')).toBe(false);
  });

  it("should reject tenant A's token on tenant B", async () => {
    const token = await identity.mint('business-unit-a', { sub: 'alice', scope: 'apps:call apps:deploy' });
    expect(await reason('business-unit-b', token)).toBe('unknown signing key');
  });

  it('should reject a token of a twin realm with the same issuer and audience (keys are per realm)', async () => {
    const token = await identity.mint('twin-one', { sub: 'alice' });
    await expect(identity.verifierFor('twin-one').verify(token)).resolves.toBeDefined();
    expect(await reason('twin-two', token)).toBe('unknown signing key');
  });

  it("should reject the same issuer's token for another tenant's audience", async () => {
    const token = await new SignJWT({ scope: 'apps:call' })
      .setProtectedHeader({ alg: 'ES256', kid: idp.kid, typ: 'at+jwt' })
      .setIssuer(SHARED_ISS).setAudience('api-a').setSubject('bob').setIssuedAt(seconds(T0)).setExpirationTime(seconds(T0) + 600)
      .sign(idp.privateKey);
    await expect(identity.verifierFor('ext-a').verify(token)).resolves.toMatchObject({ sub: 'bob' });
    expect(await reason('ext-b', token)).toBe('wrong audience');
    expect(await reason('business-unit-a', token)).toBe('algorithm not allowed');
  });

  it('should answer an unknown tenant like a bad token', () => {
    expect(() => identity.verifierFor('nobody')).toThrow(expect.objectContaining({ code: 'unauthenticated' }));
  });

  it('should mint only for iam-internal tenants', async () => {
    await expect(identity.mint('ext-a', { sub: 'x' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(identity.mint('nobody', { sub: 'x' })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('should serve the JWKS, rotate and retire only iam-internal realms', async () => {
    for (const realm of ['ext-a', 'nope', '../bu-a']) {
      await expect(identity.jwks(realm)).rejects.toMatchObject({ code: 'not_found' });
      await expect(identity.rotate(realm)).rejects.toMatchObject({ code: 'not_found' });
    }
    const before = await identity.jwks('bu-a');
    const rotated = await identity.rotate('bu-a');
    const after = await identity.jwks('bu-a');
    expect(after.keys.map((k) => k.kid)).toEqual([...before.keys.map((k) => k.kid), rotated.kid]);
    expect(JSON.stringify(after)).not.toContain('"d"');
  });

  it('should rotate through the registry: old token until retired, new token with the new kid', async () => {
    const oldToken = await identity.mint('business-unit-a', { sub: 'alice' });
    const [{ kid: oldKid }] = (await identity.jwks('bu-a')).keys;
    const { kid: newKid } = await identity.rotate('bu-a');
    const newToken = await identity.mint('business-unit-a', { sub: 'alice' });
    expect(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url').toString()).kid).toBe(newKid);
    const verifier = identity.verifierFor('business-unit-a');
    await expect(verifier.verify(oldToken)).resolves.toBeDefined();
    await identity.retire('bu-a', oldKid);
    await expect(verifier.verify(oldToken)).rejects.toMatchObject({ code: 'unauthenticated', message: 'unknown signing key' });
    await expect(verifier.verify(newToken)).resolves.toBeDefined();
  });
});

describe('sessionClaims', () => {
  it('should keep only the documented allowlist', () => {
    const session = sessionClaims({
      iss: 'https://id.acme.example', aud: 'isohost', sub: 'bob', scope: 'apps:call apps:deploy',
      name: 'Bob', email: 'bob@acme.example', roles: ['admin', 42, 'x'.repeat(200)],
      jti: 'j', iat: 1, exp: 2, nonce: 'n', phone_number: '+1', sid: 's', azp: 'client',
    });
    expect(session).toEqual({
      sub: 'bob',
      claims: { name: 'Bob', email: 'bob@acme.example', roles: ['admin'], scope: ['apps:call', 'apps:deploy'], iss: 'https://id.acme.example', aud: 'isohost' },
    });
  });

  it('should drop wrongly typed or oversized values', () => {
    const session = sessionClaims({ iss: 'i', sub: 's', name: 'x'.repeat(300), email: 7 as unknown as string, scp: ['a', 'b'] });
    expect(session).toEqual({ sub: 's', claims: { iss: 'i', scope: ['a', 'b'] } });
  });
});
