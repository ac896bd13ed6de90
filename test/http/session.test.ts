/**
 * `fc.session.user` seen from inside the mini-app equals `{ sub, claims }` of the verified
 * token, with only the allowlisted claims (name, email, roles, scope, iss, aud): no `jti`,
 * no `iat`/`exp`, no IdP extras and never the raw token (session-claims.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

// Declared here, not imported: vitest rewrites imported bindings, and guest code must name the isolate's own `fc`.
declare const fc: any;

const APP = bundleOf({
  whoami: () => fc.session.user,
  frozen: () => Object.isFrozen(fc.session.user) && Object.isFrozen(fc.session.user.claims),
});

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'alpha' }, { id: 'beta', isolation: 'database' }] });
  await s.deploy('alpha', 'who', APP);
});
afterAll(() => s?.dispose());

async function whoamiWith(token: string, oneShot: boolean): Promise<unknown> {
  if (oneShot) return resultOf(await s.inject({ method: 'POST', url: '/v1/tenants/alpha/apps/who/calls/whoami', headers: bearer(token) }));
  const launched = await s.inject({ method: 'POST', url: '/v1/tenants/alpha/apps/who/instances', headers: bearer(token) });
  const { instance } = launched.json() as { instance: string };
  return resultOf(await s.inject({ method: 'POST', url: `/v1/tenants/alpha/instances/${instance}/calls/whoami`, headers: bearer(token) }));
}

const RICH = {
  name: 'Alice Example',
  email: 'alice@example.test',
  roles: ['editor', 'viewer'],
  jti: 'jti-must-not-leak',
  sid: 'session-must-not-leak',
  nonce: 'nonce-must-not-leak',
  azp: 'client-must-not-leak',
  phone_number: '+10000000000',
  groups: ['g-must-not-leak'],
  token: 'raw-must-not-leak',
};

describe('fc.session.user over HTTP', () => {
  for (const oneShot of [false, true]) {
    const via = oneShot ? 'a one-shot call' : 'an instance call';

    it(`should equal {sub, claims} of a minted token with only allowlisted claims, via ${via}`, async () => {
      const token = await s.token('alpha', oneShot ? 'carol' : 'alice', 'apps:call');
      const user = await whoamiWith(token, oneShot);
      expect(user).toEqual({ sub: oneShot ? 'carol' : 'alice', claims: { scope: ['apps:call'], iss: 'isohost:realm:alpha', aud: 'alpha' } });
      const text = JSON.stringify(user);
      const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string };
      for (const leak of [token, token.split('.')[2]!, payload.jti, '"exp"', '"iat"', '"jti"']) expect(text).not.toContain(leak);
    });

    it(`should drop every claim outside the allowlist of a rich token, via ${via}`, async () => {
      const sub = oneShot ? 'dave' : 'erin';
      const token = await s.signRaw('alpha', s.claims('alpha', { sub, scope: 'apps:call', ...RICH }));
      const user = await whoamiWith(token, oneShot);
      expect(user).toEqual({
        sub,
        claims: { name: RICH.name, email: RICH.email, roles: RICH.roles, scope: ['apps:call'], iss: 'isohost:realm:alpha', aud: 'alpha' },
      });
      expect(JSON.stringify(user)).not.toMatch(/must-not-leak|\+10000000000/);
    });
  }

  it('should hand the mini-app a frozen session', async () => {
    expect(resultOf(await s.oneShot('alpha', 'who', 'frozen', {}))).toBe(true);
  });

  it('should give a one-shot call the claims of its own token when an idle instance of the same sub is reused', async () => {
    const admin = await s.signRaw('alpha', s.claims('alpha', { sub: 'frank', roles: ['admin'] }));
    const demoted = await s.signRaw('alpha', s.claims('alpha', { sub: 'frank', roles: [] }));
    expect(await whoamiWith(admin, true)).toMatchObject({ sub: 'frank', claims: { roles: ['admin'] } });
    // Same tenant, sub and version: the idle instance is reused — its session must not be the old token's.
    expect(await whoamiWith(demoted, true)).toMatchObject({ sub: 'frank', claims: { roles: [] } });
  });
});
