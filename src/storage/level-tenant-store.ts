/**
 * One tenant's store on LevelDB. Layout inside the tenant's keyspace (which is a
 * sublevel of the shared DB, or the root of the tenant's own DB):
 *
 *   !a!!<appId>!<key>   app entries
 *   !s!<key>            platform records (`system()`: deployed bundles, app records),
 *                       never reachable by an app id
 *
 * Both count against the tenant's quota (`storage_mb`): every uploaded version's bundle
 * is stored data of the tenant, so uploads cannot grow the disk past it (THREATS F47).
 *
 * App ids cannot contain `!`, so the prefix of every stored key parses one way only.
 */
import type { AbstractLevel } from 'abstract-level';
import { IsohostError } from '../errors.ts';
import { PurgeGate } from './purge-gate.ts';
import type { AppStore, JsonText, TenantStore } from './backend.ts';
import { APP_LIMITS, assertName, SYSTEM_LIMITS } from './key-codec.ts';
import { LevelAppStore } from './level-app-store.ts';
import { level, levelSync } from './level-errors.ts';

/** A root DB or a sublevel of it, with utf8 keys and values. */
export type Level = AbstractLevel<string | Buffer | Uint8Array, string, string>;

/** Where a tenant lives; built by the backend, one per isolation level. */
export interface TenantLocation {
  /** The DB currently holding the tenant (changes after a database-isolation purge). */
  db(): Level;
  /** Sublevel path of the tenant inside `db()`: `[namespace]`, or `[]` for its own DB. */
  readonly base: readonly string[];
  /** Deletes every key of the tenant, durably, leaving the location usable. */
  wipe(): Promise<void>;
  /** Releases the tenant's own DB; a no-op for a namespace of the shared DB. */
  close(): Promise<void>;
}

const UTF8 = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const;

export class LevelTenantStore implements TenantStore {
  readonly isolation: 'schema' | 'database';
  readonly #location: TenantLocation;
  #quotaBytes: number;
  readonly #apps = new Map<string, LevelAppStore>();
  readonly #system: LevelAppStore;
  readonly #sublevels = new Map<string, Level>();
  #sublevelsOf: Level | null = null;
  #usage = 0;
  readonly #gate = new PurgeGate();

  private constructor(isolation: 'schema' | 'database', location: TenantLocation, quotaBytes: number) {
    this.isolation = isolation;
    this.#location = location;
    this.#quotaBytes = quotaBytes;
    this.#system = new LevelAppStore(this, ['s'], SYSTEM_LIMITS);
  }

  setQuotaBytes(quotaBytes: number): void {
    if (!(quotaBytes >= 0)) throw new IsohostError('invalid_request', 'quotaBytes must be a number >= 0');
    this.#quotaBytes = quotaBytes;
  }

  /** Opens the store and computes its usage with one scan of the app keyspace and one of the platform records. */
  static async open(isolation: 'schema' | 'database', location: TenantLocation, quotaBytes: number): Promise<LevelTenantStore> {
    const store = new LevelTenantStore(isolation, location, quotaBytes);
    store.#usage = (await store.#scanUsage(['a'], true)) + (await store.#scanUsage(['s'], false));
    return store;
  }

  /**
   * The sublevel at `path` below the tenant, on the DB current right now. Cached: a
   * new sublevel object would open itself again on every operation.
   */
  sublevel(path: readonly string[]): Level {
    const db = this.#location.db();
    if (db !== this.#sublevelsOf) {
      this.#sublevels.clear();
      this.#sublevelsOf = db;
    }
    const id = path.join('!');
    let sub = this.#sublevels.get(id);
    if (sub === undefined) {
      sub = db.sublevel([...this.#location.base, ...path], UTF8) as Level;
      this.#sublevels.set(id, sub);
    }
    return sub;
  }

  app(appId: string): AppStore {
    assertName(appId, 'app id');
    let store = this.#apps.get(appId);
    if (store === undefined) {
      store = new LevelAppStore(this, ['a', appId], APP_LIMITS);
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

  /**
   * Applies a write that changes usage by `delta` bytes. Growth is reserved before the
   * write (so concurrent writes to different keys cannot overshoot together) and
   * returned if the write fails; shrinkage counts only once the write succeeded.
   */
  async charge(delta: number, write: () => Promise<void>): Promise<void> {
    if (delta > 0 && this.#usage + delta > this.#quotaBytes) {
      throw new IsohostError(
        'resource_exhausted',
        `storage quota exceeded (storage_mb): ${this.#usage} of ${this.#quotaBytes} bytes used; this write needs ${delta} more`,
      );
    }
    if (delta > 0) this.#usage += delta;
    try {
      await write();
    } catch (err) {
      if (delta > 0) this.#usage -= delta;
      throw err;
    }
    if (delta < 0) this.#usage += delta;
  }

  /** Runs an app operation; waits while a purge runs, and lets a purge wait for it. */
  guard<T>(operation: () => Promise<T>): Promise<T> {
    return this.#gate.run(operation);
  }


  async *exportEntries(): AsyncIterable<{ app: string; key: string; value: JsonText }> {
    const iterator = levelSync(() => this.sublevel(['a']).iterator());
    try {
      for (;;) {
        const entry = await level(iterator.next());
        if (entry === undefined) return;
        const [fullKey, value] = entry;
        // fullKey is `!<appId>!<key>`; the app id holds no '!'.
        const end = fullKey.indexOf('!', 1);
        yield { app: fullKey.slice(1, end), key: fullKey.slice(end + 1), value };
      }
    } finally {
      await iterator.close().catch(() => {});
    }
  }

  async purge(): Promise<void> {
    await this.#gate.exclusive(async () => {
      await this.#location.wipe();
      this.#usage = 0;
    });
  }


  /** Closes the tenant's own DB (database isolation); the backend closes the shared one. */
  close(): Promise<void> {
    return this.#location.close();
  }

  /**
   * Sum of key and value bytes below `path`, as the stores charge them: app keys without
   * their `!<appId>!` prefix (`appPrefixed`), platform record keys as they are.
   */
  async #scanUsage(path: readonly string[], appPrefixed: boolean): Promise<number> {
    const iterator = levelSync(() => this.sublevel(path).iterator<Buffer, Buffer>({ keyEncoding: 'buffer', valueEncoding: 'buffer' }));
    let total = 0;
    try {
      for (;;) {
        const entries = await level(iterator.nextv(1000));
        if (entries.length === 0) return total;
        for (const [key, value] of entries) {
          // App keys are `!<appId>!<key>`; drop the prefix up to the second '!'.
          total += (appPrefixed ? key.length - (key.indexOf(0x21, 1) + 1) : key.length) + value.length;
        }
      }
    } finally {
      await iterator.close().catch(() => {});
    }
  }
}
