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
import { pgCall } from './pg-errors.ts';
import { CONNECT_TIMEOUT_MS } from './provision.ts';

export const PLATFORM_SCHEMA = 'isohost_platform';

/** Serialises two nodes creating the schema at once ("isohost1" in ASCII). */
const SCHEMA_LOCK = '7598805659496427825';

const DDL = `
SELECT pg_advisory_xact_lock(${SCHEMA_LOCK});
CREATE SCHEMA IF NOT EXISTS ${PLATFORM_SCHEMA};
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
  #ready: Promise<void> | null = null;

  constructor(url: string) {
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
      const ready = pgCall(this.#pool.query(DDL)).then(() => undefined);
      this.#ready = ready;
      // Not cached when it failed (PostgreSQL down at start): the next query tries again.
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = null;
      });
    }
    return this.#ready;
  }
}
