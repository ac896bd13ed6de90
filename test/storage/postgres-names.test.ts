/**
 * PostgreSQL names of tenants (src/storage/postgres/names.ts): at most 63 bytes (longer
 * identifiers would be cut by PostgreSQL itself, silently, and two tenants could meet in one
 * role), distinct per platform database and namespace, and the URL parts libpq would use.
 */
import { describe, expect, it } from 'vitest';
import { initSql } from '../../src/storage/postgres/init-sql.ts';
import { quoteIdent, tenantIdent, urlParts, urlWithDatabase } from '../../src/storage/postgres/names.ts';

describe('PostgreSQL tenant names', () => {
  it('should keep identifiers within 63 bytes and distinct, even when cut', () => {
    const long = 'a'.repeat(55);
    const names = [tenantIdent('isohost', 'acme'), tenantIdent('other', 'acme'), tenantIdent('isohost', `${long}-x`), tenantIdent('isohost', `${long}-y`), tenantIdent('isohost', 'z'.repeat(63))];
    expect(names[0]).toBe('isohost_isohost_acme');
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(Buffer.byteLength(n)).toBeLessThanOrEqual(63);
    expect(tenantIdent('My-Platform.DB', 'acme')).toBe('isohost_my_platform_db_acme');
    expect(tenantIdent('isohost', `${long}-x`)).toBe(tenantIdent('isohost', `${long}-x`));
  });

  it('should read user and database from the URL as libpq does, and quote identifiers', () => {
    expect(urlParts('postgres://isohost:secret@db:5432/platform')).toEqual({ user: 'isohost', database: 'platform' });
    expect(urlParts('postgresql://bob@db')).toEqual({ user: 'bob', database: 'bob' });
    expect(urlParts('postgres://db/x')).toEqual({ user: 'postgres', database: 'x' });
    expect(() => urlParts('mysql://db/x')).toThrow(TypeError);
    expect(urlWithDatabase('postgres://u:p@db:5432/platform?sslmode=require', 'isohost_platform_acme')).toBe('postgres://u:p@db:5432/isohost_platform_acme?sslmode=require');
    expect(quoteIdent('a"b')).toBe('"a""b"');
  });

  it('should print one statement per line, switching database only for database tenants', () => {
    const sql = initSql('postgres://isohost@db/platform', [{ namespace: 'shop', isolation: 'schema' }, { namespace: 'bank', isolation: 'database' }]);
    const lines = sql.split('\n').filter((l) => l !== '' && !l.startsWith('--'));
    expect(lines).toEqual([
      'CREATE SCHEMA IF NOT EXISTS isohost_platform AUTHORIZATION "isohost";',
      'CREATE ROLE "isohost_platform_shop" NOLOGIN NOINHERIT;',
      'GRANT "isohost_platform_shop" TO "isohost";',
      'CREATE SCHEMA "isohost_platform_shop" AUTHORIZATION "isohost_platform_shop";',
      'CREATE ROLE "isohost_platform_bank" NOLOGIN NOINHERIT;',
      'GRANT "isohost_platform_bank" TO "isohost";',
      `CREATE DATABASE "isohost_platform_bank" OWNER "isohost_platform_bank" TEMPLATE template0 ENCODING 'UTF8';`,
      'REVOKE ALL ON DATABASE "isohost_platform_bank" FROM PUBLIC;',
      'GRANT CONNECT, TEMPORARY ON DATABASE "isohost_platform_bank" TO "isohost_platform_bank";',
      '\\connect "isohost_platform_bank"',
      'REVOKE ALL ON SCHEMA public FROM PUBLIC;',
      'CREATE SCHEMA "isohost_platform_bank" AUTHORIZATION "isohost_platform_bank";',
      '\\connect "platform"',
    ]);
  });
});
