/**
 * `isohost token --tenant ID --sub USER [--scope "..."] [--ttl 1h]` prints a JWT of the
 * tenant's iam-internal realm; `isohost token --realm REALM …` one of an iam-internal realm
 * named directly, e.g. the operator realm (`deployment.operator_realm`; scope apps:review).
 * `isohost realm rotate REALM` / `realm retire REALM KID` manage a realm's keys (operators
 * only: there is no remote admin endpoint).
 */
import type { PlatformConfig } from '../config/schema.ts';
import { openKeyStore } from '../identity/key-store.ts';
import { createIdentity } from '../identity/registry.ts';
import { configFrom, parse, required, UsageError, requireTenant } from './args.ts';

/** The identity of a config, operator realm included, for the key-file commands (no JWKS fetches). */
function localIdentity(config: PlatformConfig) {
  // On PostgreSQL the keys are the platform schema's, shared with every running node (its pool lets the command exit).
  const keys = openKeyStore(config).realms;
  return createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants, operatorRealm: config.deployment.operator_realm, fetchJwks: async () => ({ keys: [] }), keys });
}

export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { tenant: { type: 'string' }, realm: { type: 'string' }, sub: { type: 'string' }, scope: { type: 'string' }, ttl: { type: 'string' } });
  if ((values.tenant === undefined) === (values.realm === undefined)) throw new UsageError('token takes one of --tenant ID or --realm REALM');
  const sub = required(values, 'sub');
  const config = configFrom(values);
  const identity = localIdentity(config);
  const mintOpts = { sub, scope: values.scope ?? 'apps:call', ttl: values.ttl ?? '1h' };
  let token: string;
  if (values.realm !== undefined) token = await identity.mintInRealm(values.realm, mintOpts);
  else token = await identity.mint(requireTenant(config, values.tenant!), mintOpts);
  process.stdout.write(token + '\n');
  return 0;
}

export async function realmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, 3);
  const [sub, realm, kid] = positionals;
  if ((sub !== 'rotate' && sub !== 'retire') || realm === undefined || (sub === 'retire' && kid === undefined)) {
    throw new UsageError('usage: isohost realm rotate REALM | isohost realm retire REALM [--] KID (a KID beginning with - goes after --)');
  }
  const config = configFrom(values);
  const identity = localIdentity(config);
  const entry = sub === 'rotate' ? await identity.rotate(realm) : await identity.retire(realm, kid!);
  process.stdout.write(JSON.stringify({ realm, ...entry }) + '\n');
  return 0;
}
