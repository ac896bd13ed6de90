/**
 * Authentication of the admin API (`/v1/admin/…`, issue 14): a token of the operator realm
 * (`deployment.operator_realm`), verified there because the route says so, never because of
 * anything in the token; a tenant's token fails on that realm's key and audience. Runs in
 * `onRequest`, before any body is read (auth.ts explains why).
 *
 * Scopes: `console:read` to look (every GET), `apps:review` to approve or reject,
 * `apps:rollout` to change a rollout or roll back. `isohost console` mints all three.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { IsohostError } from '../../errors.ts';
import type { Identity } from '../../identity/registry.ts';
import { hasScope, type VerifiedToken } from '../../identity/verifier.ts';

export type AdminScope = 'console:read' | 'apps:review' | 'apps:rollout';

/** Every scope of the admin API, as `isohost console` mints them. */
export const ADMIN_SCOPES: readonly AdminScope[] = ['console:read', 'apps:review', 'apps:rollout'];

export interface AdminCaller {
  token: VerifiedToken;
  /** The operator realm the token verified in (audit lines name it). */
  realm: string;
}

const BEARER = /^Bearer ([A-Za-z0-9_\-.]+)$/i;

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified operator of an admin route, set by its requireAdmin hook. */
    admin: AdminCaller | null;
  }
}

/**
 * The `onRequest` hook of an admin route. The plugin must `decorateRequest('admin', null)`.
 *
 * @example
 * app.get('/v1/admin/tenants', { onRequest: requireAdmin(identity, 'console:read') }, (req) => adminOf(req));
 */
export function requireAdmin(identity: Identity, scope: AdminScope): onRequestAsyncHookHandler {
  return async (request) => {
    const header = request.headers.authorization;
    const m = typeof header === 'string' ? BEARER.exec(header) : null;
    if (m === null) throw new IsohostError('unauthenticated', 'missing or malformed Authorization: Bearer token');
    const verifier = identity.operatorVerifier();
    const token = await verifier.verify(m[1]!);
    if (!hasScope(token, scope)) throw new IsohostError('forbidden', `the token lacks the scope "${scope}"`);
    request.admin = { token, realm: verifier.realm };
  };
}

/** The operator its route's requireAdmin hook verified. */
export function adminOf(request: FastifyRequest): AdminCaller {
  if (request.admin === null) throw new IsohostError('internal', 'admin route without its authentication hook');
  return request.admin;
}
