/**
 * `isohost token --tenant ID --sub USER [--scope "..."] [--ttl 1h]` prints a JWT of the
 * tenant's iam-internal realm; `isohost realm rotate REALM` / `realm retire REALM KID`
 * manage that realm's keys (operators only: there is no remote admin endpoint).
 */
import { createIdentity } from '../identity/registry.ts';
import { configFrom, parse, required, UsageError, requireTenant } from './args.ts';

export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { tenant: { type: 'string' }, sub: { type: 'string' }, scope: { type: 'string' }, ttl: { type: 'string' } });
  const tenant = required(values, 'tenant');
  const sub = required(values, 'sub');
  const config = configFrom(values);
  requireTenant(config, tenant);
  const identity = createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants, fetchJwks: async () => ({ keys: [] }) });
  const token = await identity.mint(tenant, { sub, scope: values.scope ?? 'apps:call', ttl: values.ttl ?? '1h' });
  process.stdout.write(token + '\n');
  return 0;
}

export async function realmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, 3);
  const [sub, realm, kid] = positionals;
  if ((sub !== 'rotate' && sub !== 'retire') || realm === undefined || (sub === 'retire' && kid === undefined)) {
    throw new UsageError('usage: isohost realm rotate REALM | isohost realm retire REALM KID');
  }
  const config = configFrom(values);
  const identity = createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants, fetchJwks: async () => ({ keys: [] }) });
  const entry = sub === 'rotate' ? await identity.rotate(realm) : await identity.retire(realm, kid!);
  process.stdout.write(JSON.stringify({ realm, ...entry }) + '\n');
  return 0;
}
