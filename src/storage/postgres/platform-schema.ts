/**
 * The platform's own schema in the platform database (`isohost_platform`): what every node
 * of one platform shares besides the tenants' data (issue 13):
 *
 *   realm_keys(realm, doc, generation)   signing keys of iam-internal realms (private JWKs)
 *   secrets(name, value)                 the egress credential key
 *   nodes(node_id, address, heartbeat_at) each node's internal API address, for forwarding
 *
 * The schema belongs to the platform user and grants nothing to PUBLIC: a tenant role
 * (NOLOGIN NOINHERIT, see ddl.ts) has no USAGE on it, so a session running as a tenant
 * cannot read a private key even by naming the table.
 */
import pg from 'pg';
import { IsohostError } from '../../errors.ts';
import { quoteIdent, urlParts } from './names.ts';
import { isPermissionError, pgCall } from './pg-errors.ts';
import { CONNECT_TIMEOUT_MS } from './provision.ts';

export const PLATFORM_SCHEMA = 'isohost_platform';

/** Serialises two nodes creating the schema at once ("isohost1" in ASCII). */
const SCHEMA_LOCK = '7598805659496427825';

/**
 * What a superuser runs when the platform user may not create schemas in the platform
 * database (`isohost storage init --print-sql`); the tables are then isohost's to create.
 */
export function platformSchemaStatement(platformUser: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${PLATFORM_SCHEMA} AUTHORIZATION ${quoteIdent(platformUser)}`;
}

const DDL = `
SELECT pg_advisory_xact_lock(${SCHEMA_LOCK});
-- CREATE SCHEMA IF NOT EXISTS checks CREATE on the database even when the schema exists:
-- a schema a superuser made for the platform user (storage init --print-sql) is only used.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '${PLATFORM_SCHEMA}') THEN CREATE SCHEMA ${PLATFORM_SCHEMA}; END IF;
END $$;
REVOKE ALL ON SCHEMA ${PLATFORM_SCHEMA} FROM PUBLIC;
CREATE TABLE IF NOT EXISTS ${PLATFORM_SCHEMA}.realm_keys (
  realm text PRIMARY KEY,
  doc jsonb NOT NULL,
  generation bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS ${PLATFORM_SCHEMA}.secrets (
  name text PRIMARY KEY,
  value bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS ${PLATFORM_SCHEMA}.nodes (
  node_id text PRIMARY KEY,
  address text NOT NULL,
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL
);
REVOKE ALL ON ALL TABLES IN SCHEMA ${PLATFORM_SCHEMA} FROM PUBLIC;
`;

/**
 * A small pool of the platform user on the platform database, with the platform schema made
 * ready on first use. `allowExitOnIdle`: a one-off CLI command (`isohost token`) exits once
 * its queries are done without closing it.
 */
export class PlatformDb {
  readonly #pool: pg.Pool;
  readonly #user: string;
  #ready: Promise<void> | null = null;

  constructor(url: string) {
    this.#user = urlParts(url).user;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: 2,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      allowExitOnIdle: true,
      options: '-c synchronous_commit=on',
    });
    // An idle session dies when PostgreSQL restarts; the next query reconnects.
    this.#pool.on('error', () => {});
  }

  /** Makes the platform schema and its tables exist (`isohost storage init`), or fails naming what is missing. */
  ensure(): Promise<void> {
    return this.#schema();
  }

  /** Runs one statement once the schema exists; failures are coded storage_errors. */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    await this.#schema();
    return pgCall(this.#pool.query<R>(sql, params));
  }

  /** Runs `work` in one transaction on one session. */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.#schema();
    const client = await pgCall(this.#pool.connect());
    try {
      await pgCall(client.query('BEGIN'));
      const result = await pgCall(work(client));
      await pgCall(client.query('COMMIT'));
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }

  #schema(): Promise<void> {
    if (this.#ready === null) {
      const ready = this.#pool.query(DDL).then(
        () => undefined,
        (err: unknown) => {
          if (!isPermissionError(err)) return pgCall(Promise.reject(err));
          throw new IsohostError(
            'storage_error',
            `PostgreSQL user "${this.#user}" may not create schema ${PLATFORM_SCHEMA} (needs CREATE on the platform database). ` +
              'Run `isohost storage init --print-sql` and apply its statements as a superuser.',
            { cause: err, details: { reason: 'setup', missing: [`schema ${PLATFORM_SCHEMA}`] } },
          );
        },
      );
      this.#ready = ready;
      // Not cached when it failed (PostgreSQL down at start): the next query tries again.
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = null;
      });
    }
    return this.#ready;
  }
}
