/**
 * Bearer authentication for /v1. The realm is chosen by the tenant in the path, never by
 * anything in the token (THREATS C19); the tenant context is resolved only after the
 * token verified in that tenant's realm. Missing or bad token: 401; verified without
 * the route's scope: 403.
 *
 * Routes authenticate in an `onRequest` hook (requireScope), which fastify runs before it
 * reads or parses the body: an unauthenticated caller gets 401, never 400, 413 or 415 for
 * a body nobody should have looked at.
 */
import type { FastifyError, FastifyRequest, onRequestHookHandler } from 'fastify';
import { IsohostError } from '../errors.ts';
import type { Identity } from '../identity/registry.ts';
import { hasScope, sessionClaims, type VerifiedToken } from '../identity/verifier.ts';
import type { SessionUser } from '../identity/session-claims.ts';
import type { TenantRegistry } from '../tenants/registry.ts';
import type { TenantContext } from '../tenants/context.ts';

export type Scope = 'apps:call' | 'apps:deploy' | 'logs:read';

/** Shared by the requests of one verified token: read-only. */
export interface Caller {
  readonly tenant: TenantContext;
  readonly token: VerifiedToken;
  readonly user: SessionUser;
}

// The auth-scheme is case-insensitive (RFC 7235 §2.1); the token charset is b64token-like (RFC 6750 §2.1).
const BEARER = /^Bearer ([A-Za-z0-9_\-.]+)$/i;

/**
 * The caller of each verified token, derived once: the verified-token cache hands back the
 * same object for the same token, so a busy caller does not rebuild its session user (nor
 * the caller) per request. Kept with the tenant context it was made for: a config reload
 * gives the tenant a new context, and the token's next request a new caller.
 */
const callers = new WeakMap<VerifiedToken, Caller>();

function callerFor(tenant: TenantContext, token: VerifiedToken): Caller {
  const known = callers.get(token);
  if (known !== undefined && known.tenant === tenant) return known;
  const caller: Caller = { tenant, token, user: known?.user ?? sessionClaims(token.claims) };
  callers.set(token, caller);
  return caller;
}

export async function authenticate(request: FastifyRequest, identity: Identity, tenants: TenantRegistry, scope: Scope): Promise<Caller> {
  const tenantId = (request.params as { tenant?: unknown }).tenant;
  const header = request.headers.authorization;
  const m = typeof header === 'string' ? BEARER.exec(header) : null;
  if (m === null) throw new IsohostError('unauthenticated', 'missing or malformed Authorization: Bearer token');
  if (typeof tenantId !== 'string') throw new IsohostError('unauthenticated', 'token not valid for this tenant');
  const token = await identity.verifierFor(tenantId).verify(m[1]!);
  if (!hasScope(token, scope)) throw new IsohostError('forbidden', `the token lacks the scope "${scope}"`);
  const tenant = tenants.get(tenantId);
  return callerFor(tenant, token);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller of a /v1 route, set by its requireScope hook before the body is read. */
    caller: Caller | null;
  }
}

/**
 * The `onRequest` hook of a /v1 route: authenticates with `scope` and stores the caller
 * on the request. The plugin must `decorateRequest('caller', null)` once.
 *
 * @example
 * app.post('/v1/tenants/:tenant/...', { onRequest: requireScope(ctx, 'apps:call') }, (req) => callerOf(req));
 */
export function requireScope(identity: Identity, tenants: TenantRegistry, scope: Scope): onRequestHookHandler {
  // Callback-style, not async: fastify then waits on no promise of the hook's own (one per request).
  return (request, _reply, done) => {
    authenticate(request, identity, tenants, scope).then(
      (caller) => {
        request.caller = caller;
        done();
      },
      (err: FastifyError) => done(err),
    );
  };
}

/** The caller its route's requireScope hook verified. */
export function callerOf(request: FastifyRequest): Caller {
  if (request.caller === null) throw new IsohostError('internal', 'route without an authentication hook');
  return request.caller;
}
