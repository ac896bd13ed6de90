/**
 * One session-user type host-wide (issue 11): the instance host, the one-shot caller and
 * the HTTP layer use identity's SessionUser, so no cast sits between what a token grants
 * and what an instance is launched with. Checked by the type checker (`npm test` runs
 * `tsc --noEmit` first); the runtime half checks a token's user launches as it is.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { SessionUser as IdentityUser } from '../../src/identity/session-claims.ts';
import { sessionClaims } from '../../src/identity/session-claims.ts';
import type { Caller } from '../../src/http/auth.ts';
import type { InstanceHost, SessionUser as InstanceUser } from '../../src/sandbox/instance-host.ts';

describe('SessionUser', () => {
  it('should be one type for identity, HTTP callers and the instance host', () => {
    expectTypeOf<InstanceUser>().toEqualTypeOf<IdentityUser>();
    expectTypeOf<Caller['user']>().toEqualTypeOf<IdentityUser>();
    expectTypeOf<Parameters<InstanceHost['launch']>[2]>().toEqualTypeOf<IdentityUser | null>();
    const user: InstanceUser = sessionClaims({ sub: 'alice', iss: 'isohost:realm:a', scope: 'apps:call', jti: 'dropped' });
    expect(user).toEqual({ sub: 'alice', claims: { iss: 'isohost:realm:a', scope: ['apps:call'] } });
  });
});
