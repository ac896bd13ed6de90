/**
 * The identity side of the tenant registry: one verifier per tenant, built once at start-up
 * (a bad `jwks_file` or a `jwks_uri` without a fetcher stops start-up), and the key operations
 * of iam-internal realms. The caller — the route — names the tenant; nothing in a token can
 * choose which verifier runs (THREATS §C 19, 27).
 */
import type { TenantConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import type { FetchJwks } from './key-sources.ts';
import { createRealmKeyStore, type RealmKeyEntry, type RealmPublicJwk } from './realm-keys.ts';
import { mintToken, realmAudience, realmIssuer, type MintOptions } from './tokens.ts';
import { createRealmVerifier, type RealmVerifier } from './verifier.ts';

export interface IdentityOptions {
  dataDir: string;
  tenants: readonly TenantConfig[];
  /** Fetches a `jwks_uri` (wired through the egress proxy by the caller). */
  fetchJwks?: FetchJwks;
  /** ms since the epoch (tests). */
  clock?: () => number;
  /** Verified-token LRU size per tenant (default 10,000). */
  cacheSize?: number;
}

export interface Identity {
  /** The verifier of the tenant named by the route. Unknown tenant: unauthenticated (no token can verify there). */
  verifierFor(tenantId: string): RealmVerifier;
  /** Mints a token in the tenant's iam-internal realm (`isohost token`). */
  mint(tenantId: string, opts: MintOptions): Promise<string>;
  /** New signing key for an iam-internal realm (`isohost realm rotate`). */
  rotate(realm: string): Promise<RealmKeyEntry>;
  /** Retires a key: it never verifies again. */
  retire(realm: string, kid: string): Promise<RealmKeyEntry>;
  /** Public JWKS of an iam-internal realm (`GET /realms/:realm/.well-known/jwks.json`). */
  jwks(realm: string): Promise<{ keys: RealmPublicJwk[] }>;
}

/**
 * @example
 * const identity = createIdentity({ dataDir: cfg.deployment.data_dir, tenants: cfg.tenants, fetchJwks });
 * const verified = await identity.verifierFor(req.params.tenant).verify(bearer);
 */
export function createIdentity(opts: IdentityOptions): Identity {
  const keys = createRealmKeyStore(opts.dataDir);
  const tenants = new Map<string, TenantConfig>();
  const internalRealms = new Map<string, TenantConfig>();
  const verifiers = new Map<string, RealmVerifier>();
  for (const tenant of opts.tenants) {
    tenants.set(tenant.id, tenant);
    if (tenant.identity.provider === 'iam-internal') internalRealms.set(tenant.identity.realm, tenant);
    verifiers.set(
      tenant.id,
      createRealmVerifier({
        id: tenant.id,
        identity: tenant.identity,
        dataDir: opts.dataDir,
        keys,
        ...(opts.fetchJwks === undefined ? {} : { fetchJwks: opts.fetchJwks }),
        ...(opts.clock === undefined ? {} : { clock: opts.clock }),
        ...(opts.cacheSize === undefined ? {} : { cacheSize: opts.cacheSize }),
      }),
    );
  }

  function internalRealm(realm: string): TenantConfig {
    const tenant = typeof realm === 'string' ? internalRealms.get(realm) : undefined;
    if (tenant === undefined) throw new IsohostError('not_found', 'no such iam-internal realm');
    return tenant;
  }

  return {
    verifierFor(tenantId) {
      const verifier = typeof tenantId === 'string' ? verifiers.get(tenantId) : undefined;
      // Same answer as a bad token: the route must not reveal which tenants exist before auth.
      if (verifier === undefined) throw new IsohostError('unauthenticated', 'token not valid for this tenant');
      return verifier;
    },
    async mint(tenantId, mintOpts) {
      const tenant = tenants.get(tenantId);
      if (tenant === undefined) throw new IsohostError('not_found', 'no such tenant');
      if (tenant.identity.provider !== 'iam-internal') {
        throw new IsohostError('invalid_request', `tenant ${tenantId} uses an external identity provider; its issuer mints tokens`);
      }
      const realm = { realm: tenant.identity.realm, issuer: realmIssuer(tenant.identity), audience: realmAudience(tenant.identity, tenant.id), keys };
      return mintToken(realm, opts.clock === undefined || mintOpts.now !== undefined ? mintOpts : { ...mintOpts, now: opts.clock });
    },
    async rotate(realm) {
      internalRealm(realm);
      return keys.rotate(realm);
    },
    async retire(realm, kid) {
      internalRealm(realm);
      return keys.retire(realm, kid);
    },
    async jwks(realm) {
      internalRealm(realm);
      return keys.publicJwks(realm);
    },
  };
}

/**
 * An Identity whose realms can be replaced as a whole (`serve` re-reading its config on
 * SIGHUP): routes hold this one object; `replace` swaps what it delegates to. Tokens
 * already verified stay verified only in the cache of the identity that verified them.
 *
 * @example
 * const identity = replaceableIdentity(createIdentity(opts));
 * identity.replace(createIdentity({ ...opts, tenants: next.tenants }));
 */
export function replaceableIdentity(initial: Identity): Identity & { replace(next: Identity): void } {
  let current = initial;
  return {
    verifierFor: (tenantId) => current.verifierFor(tenantId),
    mint: (tenantId, mintOpts) => current.mint(tenantId, mintOpts),
    rotate: (realm) => current.rotate(realm),
    retire: (realm, kid) => current.retire(realm, kid),
    jwks: (realm) => current.jwks(realm),
    replace(next) {
      current = next;
    },
  };
}
