/**
 * Makes a tenant's role, schema or database exist, as the platform user, statement by
 * statement (ddl.ts `provisionStatements`), skipping what exists. What the user may not
 * create is collected, not thrown, so start-up names everything missing at once.
 * Several nodes may run this at the same moment: an object another node created first
 * counts as made.
 */
import pg from 'pg';
import { IsohostError } from '../../errors.ts';
import { provisionStatements, type Statement } from './ddl.ts';
import { urlParts, urlWithDatabase } from './names.ts';
import { isAlreadyThere, isPermissionError, pgCall, wrapPgError } from './pg-errors.ts';

type Isolation = 'schema' | 'database';

/** The advisory lock key under which nodes provision tenants, one at a time ("isohost" in ASCII). */
const PROVISION_LOCK = '29681794885317492';

/** How long a query waits for a connection before failing with storage_error (PostgreSQL down). */
export const CONNECT_TIMEOUT_MS = 5_000;

/** What the platform user may do on the server. */
export interface Privileges {
  superuser: boolean;
  createRole: boolean;
  createDb: boolean;
}

export class Provisioner {
  readonly #admin: pg.Pool;
  readonly #url: string;
  readonly #user: string;
  readonly #database: string;
  #privileges: Promise<Privileges> | null = null;

  /** `admin`: a pool of the platform user on the platform database (`url`). */
  constructor(admin: pg.Pool, url: string) {
    const { user, database } = urlParts(url);
    this.#admin = admin;
    this.#url = url;
    this.#user = user;
    this.#database = database;
  }

  /** What the platform user may do (read once). */
  privileges(): Promise<Privileges> {
    if (this.#privileges === null) {
      const read = pgCall(
        this.#admin.query<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
          'SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user',
        ),
      ).then((r) => ({ superuser: r.rows[0].rolsuper, createRole: r.rows[0].rolcreaterole, createDb: r.rows[0].rolcreatedb }));
      this.#privileges = read;
      read.catch(() => {
        if (this.#privileges === read) this.#privileges = null;
      });
    }
    return this.#privileges;
  }

  /**
   * Creates the tenant's missing objects; returns what could not be created, and why.
   * Nodes provision one at a time (a session advisory lock on the platform database):
   * two concurrent GRANTs of one role can fail with "tuple concurrently updated".
   */
  async ensure(ident: string, isolation: Isolation): Promise<string[]> {
    const session = await pgCall(this.#admin.connect());
    try {
      await pgCall(session.query('SELECT pg_advisory_lock($1)', [PROVISION_LOCK]));
      try {
        return await this.#ensureLocked(session, ident, isolation);
      } finally {
        await session.query('SELECT pg_advisory_unlock($1)', [PROVISION_LOCK]).catch(() => {});
      }
    } finally {
      session.release();
    }
  }

  async #ensureLocked(session: pg.PoolClient, ident: string, isolation: Isolation): Promise<string[]> {
    const state = await this.#stateOf(session, ident, isolation);
    const missing: string[] = [];
    let tenantDb: pg.Client | null = null;
    try {
      for (const statement of provisionStatements(ident, isolation, this.#user)) {
        const need = needed(statement, state);
        if (need === null) continue;
        if (missing.length > 0) {
          missing.push(need);
          continue;
        }
        try {
          if (statement.database === 'platform') {
            await session.query(statement.sql);
          } else {
            if (tenantDb === null) {
              tenantDb = new pg.Client({ connectionString: urlWithDatabase(this.#url, ident), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
              await tenantDb.connect();
            }
            await tenantDb.query(statement.sql);
          }
          if (statement.kind === 'database') state.databaseCreated = true;
        } catch (err) {
          if (isAlreadyThere(err)) continue;
          if (!isPermissionError(err)) throw err;
          missing.push(need);
        }
      }
    } catch (err) {
      throw wrapPgError(err);
    } finally {
      await tenantDb?.end().catch(() => {});
    }
    return missing;
  }

  /** Which of the tenant's objects exist already. */
  async #stateOf(session: pg.PoolClient, ident: string, isolation: Isolation): Promise<TenantState> {
    const platform = await pgCall(
      session.query<{ role: boolean; member: boolean; schema: boolean; database: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role,
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                  OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = $1 AND pg_has_role(current_user, r.oid, 'MEMBER')) AS member,
                EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
                EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS database`,
        [ident],
      ),
    );
    const row = platform.rows[0];
    let tenantSchema = false;
    if (isolation === 'database' && row.database) {
      const client = new pg.Client({ connectionString: urlWithDatabase(this.#url, ident), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
      try {
        await pgCall(client.connect());
        tenantSchema = (await pgCall(client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [ident]))).rows.length > 0;
      } finally {
        await client.end().catch(() => {});
      }
    }
    return { ident, role: row.role, member: row.member, schema: row.schema, database: row.database, tenantSchema, databaseCreated: false, platformUser: this.#user, platformDb: this.#database };
  }

  /** The start-up error naming everything missing. */
  missingError(missing: string[]): IsohostError {
    return new IsohostError(
      'storage_error',
      `PostgreSQL user "${this.#user}" may not create: ${missing.join('; ')}. ` +
        'Run `isohost storage init --print-sql` and apply its statements as a superuser, or grant the privileges named.',
      { details: { reason: 'setup', missing } },
    );
  }
}

interface TenantState {
  ident: string;
  role: boolean;
  member: boolean;
  schema: boolean;
  database: boolean;
  tenantSchema: boolean;
  /** Set once this start-up created the database: its grants are then ours to set. */
  databaseCreated: boolean;
  platformUser: string;
  platformDb: string;
}

/** What a provisioning statement needs, or null when its object exists already. */
function needed(statement: Statement, s: TenantState): string | null {
  switch (statement.kind) {
    case 'role':
      return s.role ? null : `role "${s.ident}" (needs CREATEROLE)`;
    case 'membership':
      return s.member ? null : `membership of "${s.platformUser}" in role "${s.ident}" (needs CREATEROLE)`;
    case 'schema':
      return s.schema ? null : `schema "${s.ident}" in database "${s.platformDb}" (needs CREATE on the database)`;
    case 'database':
      return s.database ? null : `database "${s.ident}" (needs CREATEDB)`;
    case 'tenant-schema':
      return s.tenantSchema ? null : `schema "${s.ident}" in database "${s.ident}"`;
    case 'database-grants':
      // Set when this start-up created the database; an operator's database keeps its own grants.
      return s.databaseCreated ? `grants on database "${s.ident}"` : null;
  }
}
