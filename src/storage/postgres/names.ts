/**
 * PostgreSQL names of a tenant. One identifier per tenant serves as its role, its schema
 * and (with `isolation: database`) its database: `isohost_<platform db>_<namespace>`.
 * The platform database is part of it because roles are global to a PostgreSQL server:
 * two isohost platforms (two databases) on one server must not share a tenant role.
 * Identifiers are at most 63 bytes (NAMEDATALEN); a longer one is cut and suffixed with
 * a hash of the whole, so two tenants never truncate to the same name.
 */
import { createHash } from 'node:crypto';

const MAX_IDENTIFIER = 63;

/** The role, schema and database name of a tenant of the platform database `platformDb`. */
export function tenantIdent(platformDb: string, namespace: string): string {
  const db = platformDb.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const full = `isohost_${db}_${namespace}`;
  if (full.length <= MAX_IDENTIFIER) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 12);
  return `${full.slice(0, MAX_IDENTIFIER - hash.length - 1)}_${hash}`;
}

/** A double-quoted SQL identifier (our identifiers hold [a-z0-9_-] only; quotes are doubled anyway). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A single-quoted SQL string literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The user and database named by a `postgres://` URL (defaults as libpq: user `postgres`, database = user). */
export function urlParts(url: string): { user: string; database: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('deployment.storage.url must be a postgres:// URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new TypeError('deployment.storage.url must be a postgres:// URL');
  const user = decodeURIComponent(parsed.username) || 'postgres';
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || user;
  return { user, database };
}

/** The same URL pointing at another database (a tenant's own). */
export function urlWithDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}
