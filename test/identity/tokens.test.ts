import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRealmKeyStore, type RealmKeyStore } from '../../src/identity/realm-keys.ts';
import { INTERNAL_TYP, mintToken, parseTtl, realmAudience, realmIssuer, scopeClaim } from '../../src/identity/tokens.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('parseTtl', () => {
  it('should parse seconds, minutes, hours and days', () => {
    expect(parseTtl('90s')).toBe(90);
    expect(parseTtl('30m')).toBe(1800);
    expect(parseTtl('1h')).toBe(3600);
    expect(parseTtl('2d')).toBe(172_800);
    expect(parseTtl('120')).toBe(120);
    expect(parseTtl(45)).toBe(45);
  });

  it('should reject malformed or non-positive ttls with invalid_request', () => {
    for (const bad of ['', '1w', '-1h', '1.5h', 'h', '0s', '1 h 2', 'Infinity']) {
      expect(() => parseTtl(bad), bad).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
    for (const bad of [0, -5, 1.5, Number.NaN]) expect(() => parseTtl(bad)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});

describe('scopeClaim', () => {
  it('should join, dedupe and check RFC 6749 scope tokens', () => {
    expect(scopeClaim('apps:call  apps:deploy apps:call')).toBe('apps:call apps:deploy');
    expect(scopeClaim(['apps:call'])).toBe('apps:call');
    expect(scopeClaim(undefined)).toBe('');
    expect(() => scopeClaim(['a"b'])).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(() => scopeClaim(['a\\b'])).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});

describe('mintToken', () => {
  let dir: { path: string; dispose: () => Promise<void> };
  let keys: RealmKeyStore;
  const now = 1_800_000_000_000;
  beforeEach(async () => {
    dir = await tempDir();
    keys = createRealmKeyStore(dir.path);
  });
  afterEach(() => dir.dispose());

  const realm = () => ({ realm: 'bu-a', issuer: 'isohost:realm:bu-a', audience: 'business-unit-a', keys });

  it('should sign EdDSA with the realm kid and the pinned typ', async () => {
    const token = await mintToken(realm(), { sub: 'alice', scope: 'apps:call apps:deploy', now: () => now });
    const header = decodeProtectedHeader(token);
    expect(header).toEqual({ alg: 'EdDSA', kid: (await keys.signingKey('bu-a')).kid, typ: INTERNAL_TYP });
    expect(INTERNAL_TYP).toBe('isohost+jwt');
  });

  it('should carry iss, aud, sub, scope, iat, exp (1h by default) and a jti', async () => {
    const claims = decodeJwt(await mintToken(realm(), { sub: 'alice', scope: ['apps:call'], now: () => now }));
    expect(claims).toEqual({
      iss: 'isohost:realm:bu-a',
      aud: 'business-unit-a',
      sub: 'alice',
      scope: 'apps:call',
      iat: now / 1000,
      exp: now / 1000 + 3600,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('should accept a 24h ttl and reject a longer one with invalid_request', async () => {
    const claims = decodeJwt(await mintToken(realm(), { sub: 'a', ttl: '24h', now: () => now }));
    expect(claims.exp! - claims.iat!).toBe(86_400);
    await expect(mintToken(realm(), { sub: 'a', ttl: '2d' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(mintToken(realm(), { sub: 'a', ttl: 86_401 })).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('should reject an empty, huge or control-character sub', async () => {
    for (const sub of ['', 'x'.repeat(256), 'a\nb']) {
      await expect(mintToken(realm(), { sub })).rejects.toMatchObject({ code: 'invalid_request' });
    }
  });

  it('should give each token its own jti', async () => {
    const a = decodeJwt(await mintToken(realm(), { sub: 'a' }));
    const b = decodeJwt(await mintToken(realm(), { sub: 'a' }));
    expect(a.jti).not.toBe(b.jti);
  });
});

describe('realm issuer and audience', () => {
  it('should default iss to isohost:realm:<realm> and aud to the tenant id', () => {
    expect(realmIssuer({ provider: 'iam-internal', realm: 'bu-a' })).toBe('isohost:realm:bu-a');
    expect(realmAudience({ provider: 'iam-internal', realm: 'bu-a' }, 'business-unit-a')).toBe('business-unit-a');
  });

  it('should use the configured issuer and audience', () => {
    const identity = { provider: 'iam-internal' as const, realm: 'bu-a', issuer: 'https://iam.example', audience: 'isohost' };
    expect(realmIssuer(identity)).toBe('https://iam.example');
    expect(realmAudience(identity, 'business-unit-a')).toBe('isohost');
  });
});
