/**
 * One tenant's store on PostgreSQL: a schema of its own (in the platform database, or in a
 * database of its own), reached only through a pool whose sessions run as the tenant's role.
 *
 * `usageBytes()` is synchronous by contract, so it answers from the usage the last write of
 * this node returned (a write that changes no size returns none: the view stays); the quota itself is enforced by PostgreSQL on the usage row, so it
 * holds across nodes whatever this cache says.
 */
import type pg from 'pg';
import { IsohostError } from '../../errors.ts';
import { PurgeGate } from '../purge-gate.ts';
import type { AppStore, JsonText, TenantStore } from '../backend.ts';
import { APP_LIMITS, assertName, SYSTEM_LIMITS } from '../key-codec.ts';
import { PgAppStore, type PgAppStoreHost } from './pg-app-store.ts';
import { pgCall } from './pg-errors.ts';

/** The `space` of platform records; app ids match [a-z0-9-], so none is this. */
export const SYSTEM_SPACE = '!s';
const EXPORT_PAGE = 500;

/** What the backend does for a tenant store: its pool, and the purge that needs the platform user. */
export interface PgTenantHost {
  /** The tenant's pool (a new one after a purge). */
  pool(): pg.Pool;
  /** Removes every row of the tenant (drop and re-create, or truncate), leaving the store usable. */
  wipe(): Promise<void>;
}

export class PgTenantStore implements TenantStore, PgAppStoreHost {
  readonly isolation: 'schema' | 'database';
  readonly #host: PgTenantHost;
  #quotaBytes: number;
  #usage = 0;
  #writing = 0;
  /** Usages noted since this node's writes of the tenant last all ended. */
  #noted = 0;
  readonly #apps = new Map<string, PgAppStore>();
  readonly #system: PgAppStore;
  readonly #gate = new PurgeGate();

  private constructor(isolation: 'schema' | 'database', host: PgTenantHost, quotaBytes: number) {
    this.isolation = isolation;
    this.#host = host;
    this.#quotaBytes = quotaBytes;
    this.#system = new PgAppStore(this, SYSTEM_SPACE, SYSTEM_LIMITS);
  }

  /** Opens the store and reads its usage row. */
  static async open(isolation: 'schema' | 'database', host: PgTenantHost, quotaBytes: number): Promise<PgTenantStore> {
    const store = new PgTenantStore(isolation, host, quotaBytes);
    await store.refreshUsage();
    return store;
  }

  /** Re-reads the usage row (writes of other nodes change it). */
  async refreshUsage(): Promise<void> {
    const result = await this.query<{ bytes: string }>({ name: 'isohost_usage', text: 'SELECT bytes FROM usage' });
    this.#usage = Number(result.rows[0]?.bytes ?? 0);
  }

  app(appId: string): AppStore {
    assertName(appId, 'app id');
    let store = this.#apps.get(appId);
    if (store === undefined) {
      store = new PgAppStore(this, appId, APP_LIMITS);
      this.#apps.set(appId, store);
    }
    return store;
  }

  system(): AppStore {
    return this.#system;
  }

  usageBytes(): number {
    return this.#usage;
  }

  setQuotaBytes(quotaBytes: number): void {
    if (!(quotaBytes >= 0)) throw new IsohostError('invalid_request', 'quotaBytes must be a number >= 0');
    this.#quotaBytes = quotaBytes;
  }

  quotaBytes(): number {
    return this.#quotaBytes;
  }

  noteUsage(bytes: number): void {
    this.#usage = bytes;
    this.#noted++;
  }

  /**
   * Writes of this tenant commit one after another (the advisory lock every write function of
   * ddl.ts takes), but their answers arrive over different pool connections, in any order: of
   * two usages noted while writes overlapped, the last to arrive may be the older commit's. So
   * when writes ended that noted two usages or more, the last one to end re-reads the usage
   * row before it resolves, and the view is exact again. One usage alone is the latest change
   * these writes made (the others changed no size), and no read is needed.
   */
  writeStarted(): void {
    this.#writing++;
  }

  async writeEnded(): Promise<void> {
    this.#writing--;
    if (this.#writing > 0) return;
    const noted = this.#noted;
    this.#noted = 0;
    if (noted > 1) await this.refreshUsage().catch(() => {});
  }

  /** One statement on the tenant's pool, inside the purge guard. */
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return this.#gate.run(() => pgCall(this.#host.pool().query<R>(config)));
  }

  async *exportEntries(): AsyncIterable<{ app: string; key: string; value: JsonText }> {
    // Keyset pages: no transaction or cursor held open between yields.
    let after: [string, Buffer] = ['', Buffer.alloc(0)];
    for (;;) {
      const result = await this.query<{ space: string; key: Buffer; value: Buffer }>({
        name: 'isohost_export',
        text: `SELECT space, key, value FROM entries WHERE space <> '${SYSTEM_SPACE}' AND (space, key) > ($1, $2) ORDER BY space, key LIMIT ${EXPORT_PAGE}`,
        values: after,
      });
      for (const row of result.rows) yield { app: row.space, key: row.key.toString('utf8'), value: row.value.toString('utf8') };
      if (result.rows.length < EXPORT_PAGE) return;
      const last = result.rows[result.rows.length - 1];
      after = [last.space, last.key];
    }
  }

  async purge(): Promise<void> {
    await this.#gate.exclusive(async () => {
      await this.#host.wipe();
      this.#usage = 0;
    });
  }



}
