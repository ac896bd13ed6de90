/**
 * The statements `isohost storage init --print-sql` prints: the platform schema
 * (platform-schema.ts), then every tenant's role, membership
 * of the platform user, and schema or database, for an operator to run as a superuser when
 * the platform user may not create them itself. One statement per line; `\connect` lines
 * (psql) switch to a tenant's own database and back. The tenants' tables are not in it:
 * isohost creates them at start-up, as each tenant's role.
 */
import { provisionStatements } from './ddl.ts';
import { quoteIdent, tenantIdent, urlParts } from './names.ts';
import { platformSchemaStatement } from './platform-schema.ts';

/**
 * @example
 * process.stdout.write(initSql('postgres://isohost@db/isohost', [{ namespace: 'acme', isolation: 'schema' }]));
 */
export function initSql(url: string, tenants: readonly { namespace: string; isolation: 'schema' | 'database' }[]): string {
  const { user, database } = urlParts(url);
  const lines = [
    `-- isohost storage init for platform user "${user}", platform database "${database}".`,
    `-- Run once as a superuser, connected to "${database}": psql -v ON_ERROR_STOP=1 -d ${database} -f THIS_FILE`,
  ];
  // The platform's own schema (shared keys, the node directory): the platform user's, no tenant's.
  lines.push('', '-- the platform schema (realm keys, egress key, nodes)', `${platformSchemaStatement(user)};`);
  for (const t of tenants) {
    const ident = tenantIdent(database, t.namespace);
    lines.push('', `-- tenant namespace "${t.namespace}" (isolation: ${t.isolation})`);
    const statements = provisionStatements(ident, t.isolation, user);
    let inTenant = false;
    for (const s of statements) {
      if (s.database === 'tenant' && !inTenant) lines.push(`\\connect ${quoteIdent(ident)}`);
      inTenant = s.database === 'tenant';
      lines.push(`${s.sql};`);
    }
    if (inTenant) lines.push(`\\connect ${quoteIdent(database)}`);
  }
  return lines.join('\n') + '\n';
}
