/**
 * The operator realm (deployment.operator_realm, issue 12): a realm of no tenant, refused
 * when a tenant claims it; its tokens verify only there, and tenant tokens never do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/default.ts';
import { validateConfig } from '../../src/config/load.ts';
import { createIdentity, OPERATOR_AUDIENCE, type Identity } from '../../src/identity/registry.ts';
import { testConfigObject } from '../helpers/platform.ts';
import { tempDir } from '../helpers/tmp.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let identity: Identity;
beforeAll(async () => {
  dir = await tempDir('isohost-ops-realm-');
  const config = validateConfig({ ...testConfigObject(dir.path, [{ id: 'acme' }]), deployment: { data_dir: dir.path, operator_realm: 'ops' } }, dir.path);
  identity = createIdentity({ dataDir: dir.path, tenants: config.tenants, operatorRealm: config.deployment.operator_realm });
});
afterAll(() => dir.dispose());

describe('operator realm', () => {
  it('should be ops in the built-in default config, and refused when a tenant uses the same realm', () => {
    expect(DEFAULT_CONFIG.deployment.operator_realm).toBe('ops');
    const raw = testConfigObject('/tmp/x', [{ id: 'acme' }]);
    expect(() => validateConfig({ ...raw, deployment: { ...raw.deployment, operator_realm: 'acme' } }, '/tmp/x')).toThrow(/tenants\[0\]\.identity\.realm.*operator_realm/);
  });

  it('should verify its own tokens with the operator audience and nothing else', async () => {
    const token = await identity.mintInRealm('ops', { sub: 'olga', scope: 'apps:review' });
    const verified = await identity.operatorVerifier().verify(token);
    expect(verified.sub).toBe('olga');
    expect(verified.claims.aud).toBe(OPERATOR_AUDIENCE);
    await expect(identity.verifierFor('acme').verify(token)).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it("should never verify a tenant's token, even one minted through the tenant's realm name", async () => {
    for (const token of [await identity.mint('acme', { sub: 'partner', scope: 'apps:review' }), await identity.mintInRealm('acme', { sub: 'partner', scope: 'apps:review' })]) {
      await expect(identity.operatorVerifier().verify(token)).rejects.toMatchObject({ code: 'unauthenticated' });
      expect((await identity.verifierFor('acme').verify(token)).sub).toBe('partner');
    }
  });

  it('should have no operator verifier when no realm is configured', () => {
    const none = createIdentity({ dataDir: dir.path, tenants: [] });
    expect(() => none.operatorVerifier()).toThrow(expect.objectContaining({ code: 'unauthenticated' }));
  });
});
