/**
 * The identity side of the tenant registry: one verifier per tenant, built once at start-up
 * (a bad `jwks_file` or a `jwks_uri` without a fetcher stops start-up), and the key operations
 * of iam-internal realms. The caller — the route — names the tenant; nothing in a token can
 * choose which verifier runs (THREATS §C 19, 27).
 *
 * The operator realm (`deployment.operator_realm`, issue 12) is an iam-internal realm of no
 * tenant: its own keys under data_dir, issuer `isohost:realm:<realm>`, audience
 * OPERATOR_AUDIENCE (never a tenant id, which has no colon). A route asks for it by name
 * (`operatorVerifier()`), never because of anything in a token; a tenant token fails there on
 * its key and audience, and an operator token fails in every tenant realm the same way.
 */
import type { TenantConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import type { FetchJwks } from './key-sources.ts';
import { createRealmKeyStore, type RealmKeyEntry, type RealmKeyStore, type RealmPublicJwk } from './realm-keys.ts';
import { mintToken, realmAudience, realmIssuer, type MintOptions } from './tokens.ts';
import { createRealmVerifier, type RealmVerifier } from './verifier.ts';

/** `aud` of operator-realm tokens: with a colon, so it can never be a tenant's default audience. */
export const OPERATOR_AUDIENCE = 'isohost:operators';

export interface IdentityOptions {
  dataDir: string;
  tenants: readonly TenantConfig[];
  /** `deployment.operator_realm`: the realm of operators' tokens (app review); none when absent. */
  operatorRealm?: string | undefined;
  /** Where iam-internal realm keys live (key-store.ts `openKeyStore`); default: files under dataDir. */
  keys?: RealmKeyStore;
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
  /** Mints a token in an iam-internal realm named directly: a tenant's, or the operator realm (`isohost token --realm`). */
  mintInRealm(realm: string, opts: MintOptions): Promise<string>;
  /** The operator realm's verifier; unauthenticated when no operator realm is configured. */
  operatorVerifier(): RealmVerifier;
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
  const keys = opts.keys ?? createRealmKeyStore(opts.dataDir);
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
  const operatorRealm = opts.operatorRealm;
  const operatorIdentity = operatorRealm === undefined ? undefined : { provider: 'iam-internal' as const, realm: operatorRealm, audience: OPERATOR_AUDIENCE };
  const operator =
    operatorIdentity === undefined
      ? undefined
      : createRealmVerifier({
          id: OPERATOR_AUDIENCE,
          identity: operatorIdentity,
          dataDir: opts.dataDir,
          keys,
          ...(opts.clock === undefined ? {} : { clock: opts.clock }),
          ...(opts.cacheSize === undefined ? {} : { cacheSize: opts.cacheSize }),
        });

  /** The realm's iam-internal identity and the audience its tokens carry. */
  function internalRealm(realm: string): { identity: { provider: 'iam-internal'; realm: string; issuer?: string | undefined; audience?: string | undefined }; audience: string } {
    if (operatorIdentity !== undefined && realm === operatorIdentity.realm) return { identity: operatorIdentity, audience: OPERATOR_AUDIENCE };
    const tenant = typeof realm === 'string' ? internalRealms.get(realm) : undefined;
    if (tenant === undefined || tenant.identity.provider !== 'iam-internal') throw new IsohostError('not_found', 'no such iam-internal realm');
    return { identity: tenant.identity, audience: realmAudience(tenant.identity, tenant.id) };
  }

  function withClock(mintOpts: MintOptions): MintOptions {
    return opts.clock === undefined || mintOpts.now !== undefined ? mintOpts : { ...mintOpts, now: opts.clock };
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
      return mintToken(realm, withClock(mintOpts));
    },
    async mintInRealm(realm, mintOpts) {
      const { identity, audience } = internalRealm(realm);
      return mintToken({ realm: identity.realm, issuer: realmIssuer(identity), audience, keys }, withClock(mintOpts));
    },
    operatorVerifier() {
      if (operator === undefined) throw new IsohostError('unauthenticated', 'this host has no operator realm (deployment.operator_realm)');
      return operator;
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
    mintInRealm: (realm, mintOpts) => current.mintInRealm(realm, mintOpts),
    operatorVerifier: () => current.operatorVerifier(),
    rotate: (realm) => current.rotate(realm),
    retire: (realm, kid) => current.retire(realm, kid),
    jwks: (realm) => current.jwks(realm),
    replace(next) {
      current = next;
    },
  };
}
