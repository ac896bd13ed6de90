/**
 * Authentication of operator routes (issue 12: app review). The token must verify in the
 * operator realm (`deployment.operator_realm`), chosen by the route, never by the token; a
 * tenant's token fails there (its key and audience are the tenant's), so a partner can
 * never approve its own code. The tenant in the path is resolved only after the token
 * verified, and an unknown one is not_found: an operator may know which tenants exist.
 * Runs in `onRequest`, before any body is read, like requireScope (auth.ts).
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { IsohostError } from '../errors.ts';
import type { Identity } from '../identity/registry.ts';
import { hasScope, type VerifiedToken } from '../identity/verifier.ts';
import type { TenantContext } from '../tenants/context.ts';
import type { TenantRegistry } from '../tenants/registry.ts';

export type OperatorScope = 'apps:review';

export interface OperatorCaller {
  /** The tenant named in the path, whose app is reviewed. */
  tenant: TenantContext;
  token: VerifiedToken;
  /** The operator realm the token verified in (for audit lines). */
  realm: string;
}

const BEARER = /^Bearer ([A-Za-z0-9_\-.]+)$/i;

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified operator of an operator route, set by its requireOperator hook. */
    operator: OperatorCaller | null;
  }
}

/**
 * The `onRequest` hook of an operator route. The plugin must `decorateRequest('operator', null)`.
 *
 * @example
 * app.post('/v1/tenants/:tenant/apps/:app/versions/:version/approve', { onRequest: requireOperator(identity, tenants, 'apps:review') }, (req) => operatorOf(req));
 */
export function requireOperator(identity: Identity, tenants: TenantRegistry, scope: OperatorScope): onRequestAsyncHookHandler {
  return async (request) => {
    const header = request.headers.authorization;
    const m = typeof header === 'string' ? BEARER.exec(header) : null;
    if (m === null) throw new IsohostError('unauthenticated', 'missing or malformed Authorization: Bearer token');
    const verifier = identity.operatorVerifier();
    let token: VerifiedToken;
    try {
      token = await verifier.verify(m[1]!);
    } catch (err) {
      // A valid token of a tenant realm is authenticated, just not as an operator: 403, which
      // tells a partner plainly that approving is not theirs to do.
      if (err instanceof IsohostError && err.code === 'unauthenticated' && (await verifiesForTenant(identity, request, m[1]!))) {
        throw new IsohostError('forbidden', `only a token of the operator realm may do this; a tenant's token never can`);
      }
      throw err;
    }
    if (!hasScope(token, scope)) throw new IsohostError('forbidden', `the token lacks the scope "${scope}"`);
    const tenantId = (request.params as { tenant?: unknown }).tenant;
    if (typeof tenantId !== 'string') throw new IsohostError('not_found', 'no such tenant');
    request.operator = { tenant: tenants.get(tenantId), token, realm: verifier.realm };
  };
}

/** Whether the bearer verifies in the realm of the tenant in the path (a partner trying to review). */
async function verifiesForTenant(identity: Identity, request: FastifyRequest, bearer: string): Promise<boolean> {
  const tenantId = (request.params as { tenant?: unknown }).tenant;
  if (typeof tenantId !== 'string') return false;
  try {
    await identity.verifierFor(tenantId).verify(bearer);
    return true;
  } catch {
    return false;
  }
}

/** The operator its route's requireOperator hook verified. */
export function operatorOf(request: FastifyRequest): OperatorCaller {
  if (request.operator === null) throw new IsohostError('internal', 'operator route without its authentication hook');
  return request.operator;
}
