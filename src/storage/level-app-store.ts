/**
 * One app's keyspace (or the tenant's system records) on LevelDB. Every operation
 * goes through a sublevel, whose prefix and range bounds keep keys like `../b`,
 * `!a!`, NUL or `\uffff` inside it. Writes use `sync: true`: a resolved `set` has
 * reached the OS with fsync, so a SIGKILL right after loses nothing.
 */
import { IsohostError } from '../errors.ts';
import type { AppStore, BatchOp, JsonText, ListOptions, ListPage } from './backend.ts';
import {
  assertKey,
  assertLimit,
  assertPrefix,
  assertValue,
  decodeCursor,
  describeLimit,
  encodeCursor,
  MAX_BATCH_OPS,
  MAX_PAGE_BYTES,
  utf8Bytes,
  type KeyspaceLimits,
} from './key-codec.ts';
import { KeyedLock } from './keyed-lock.ts';
import { level, wrapLevelError, levelSync } from './level-errors.ts';
import type { Level } from './level-tenant-store.ts';

/** What an app store needs from its tenant store (kept narrow to avoid a cycle of knowledge). */
export interface AppStoreHost {
  sublevel(path: readonly string[]): Level;
  charge(delta: number, write: () => Promise<void>): Promise<void>;
  guard<T>(operation: () => Promise<T>): Promise<T>;
}

/**
 * classic-level's `WriteOptions.sync`. The sublevel typings drop it, but abstract-level
 * forwards options to the root DB unchanged (`{ ...options, keyEncoding }`).
 */
export const SYNC = { sync: true } as object;

export class LevelAppStore implements AppStore {
  readonly #host: AppStoreHost;
  readonly #path: readonly string[];
  readonly #limits: KeyspaceLimits;
  readonly #lock = new KeyedLock();

  constructor(host: AppStoreHost, path: readonly string[], limits: KeyspaceLimits) {
    this.#host = host;
    this.#path = path;
    this.#limits = limits;
  }

  #db(): Level {
    return this.#host.sublevel(this.#path);
  }

  async get(key: string): Promise<JsonText | undefined> {
    assertKey(key);
    // getSync: a point read is served from LevelDB's memtable or block cache in
    // microseconds; the async get adds a libuv thread-pool round trip to every
    // fc.storage.get (the hop, not the read, dominated call.storage.get in the bench).
    // Until the DB has finished opening only the async API waits for it.
    return this.#host.guard(() => {
      const db = this.#db();
      if (db.status !== 'open') return level(db.get(key));
      try {
        return Promise.resolve(db.getSync(key));
      } catch (err) {
        return Promise.reject(wrapLevelError(err));
      }
    });
  }

  async set(key: string, value: JsonText): Promise<void> {
    assertKey(key);
    const valueBytes = assertValue(value, this.#limits.maxValueBytes);
    await this.#write([key], async (db) => {
      const old = await this.#sizeOf(db, key);
      await this.#commit(utf8Bytes(key) + valueBytes - (old ?? 0), () => level(db.put(key, value, SYNC)));
    });
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.#write([key], async (db) => {
      const old = await this.#sizeOf(db, key);
      if (old === undefined) return; // nothing stored: nothing to write
      await this.#commit(-old, () => level(db.del(key, SYNC)));
    });
  }

  async batch(ops: BatchOp[]): Promise<void> {
    const sizes = this.#checkBatch(ops);
    if (ops.length === 0) return;
    const keys = ops.map((op) => op.key);
    await this.#write(keys, async (db) => {
      // Net change: final size of every touched key minus its size before the batch.
      const unique = [...new Set(keys)];
      const olds = await level(db.getMany(unique));
      const before = new Map<string, number>();
      const after = new Map<string, number>();
      unique.forEach((key, i) => before.set(key, olds[i] === undefined ? 0 : utf8Bytes(key) + utf8Bytes(olds[i])));
      ops.forEach((op, i) => after.set(op.key, op.op === 'set' ? sizes[i] : 0));
      let delta = 0;
      for (const [key, size] of after) delta += size - (before.get(key) ?? 0);
      const operations = ops.map((op) =>
        op.op === 'set' ? { type: 'put' as const, key: op.key, value: op.value } : { type: 'del' as const, key: op.key },
      );
      // One LevelDB WriteBatch: applied atomically, also across a crash.
      await this.#commit(delta, () => level(db.batch(operations, SYNC)));
    });
  }

  async list(options: ListOptions): Promise<ListPage> {
    const { prefix, limit, cursor } = options;
    assertPrefix(prefix);
    assertLimit(limit);
    const after = cursor === undefined ? undefined : decodeCursor(cursor, prefix);
    return this.#host.guard(async () => {
      // Keys sharing a prefix are contiguous in byte order: start there, stop at the first miss.
      const range = after === undefined ? { gte: prefix } : { gt: after };
      const iterator = levelSync(() => this.#db().iterator(range));
      try {
        const entries: ListPage['entries'] = [];
        let size = 0; // UTF-16 units: close enough to bound the page
        while (entries.length < limit && size < MAX_PAGE_BYTES) {
          const entry = await level(iterator.next());
          if (entry === undefined || !entry[0].startsWith(prefix)) return { entries, cursor: null };
          entries.push({ key: entry[0], value: entry[1] });
          size += entry[0].length + entry[1].length;
        }
        const next = await level(iterator.next());
        const more = next !== undefined && next[0].startsWith(prefix);
        return { entries, cursor: more ? encodeCursor(entries[entries.length - 1].key) : null };
      } finally {
        await iterator.close().catch(() => {});
      }
    });
  }

  /** Runs a write, charged against the tenant's quota (app data and platform records alike). */
  #commit(delta: number, write: () => Promise<void>): Promise<void> {
    return this.#host.charge(delta, write);
  }

  /** Key + value bytes of a stored entry, or undefined. */
  async #sizeOf(db: Level, key: string): Promise<number | undefined> {
    const value = await level(db.get(key));
    return value === undefined ? undefined : utf8Bytes(key) + utf8Bytes(value);
  }

  /** Holds the keys' lock (old sizes stay valid until the write lands) inside the purge guard. */
  #write(keys: string[], work: (db: Level) => Promise<void>): Promise<void> {
    return this.#host.guard(() => this.#lock.run(keys, () => work(this.#db())));
  }

  /** Validates a whole batch before anything is written; returns each set's entry size. */
  #checkBatch(ops: BatchOp[]): number[] {
    if (!Array.isArray(ops)) throw new IsohostError('invalid_request', 'batch must be an array of ops');
    if (ops.length > MAX_BATCH_OPS) {
      throw new IsohostError('invalid_request', `batch has ${ops.length} ops; the limit is ${MAX_BATCH_OPS}`);
    }
    let total = 0;
    const sizes = ops.map((op, i) => {
      const where = `batch op ${i}`;
      if (typeof op !== 'object' || op === null || (op.op !== 'set' && op.op !== 'delete')) {
        throw new IsohostError('invalid_request', `${where}: op must be "set" or "delete"`);
      }
      assertKey(op.key, `${where}: key`);
      const size = utf8Bytes(op.key) + (op.op === 'set' ? assertValue(op.value, this.#limits.maxValueBytes) : 0);
      total += size;
      return size;
    });
    if (total > this.#limits.maxBatchBytes) {
      throw new IsohostError('payload_too_large', `batch is ${total} bytes; the limit is ${describeLimit(this.#limits.maxBatchBytes)}`);
    }
    return sizes;
  }
}
