/**
 * One app's keyspace (or the tenant's platform records) on PostgreSQL. Every statement
 * runs on the tenant's pool, whose sessions hold the tenant's role and schema, and is
 * one round trip: a read is one SELECT; a write is one call of `isohost_apply`, which
 * checks the quota and writes in the same transaction. Commits wait for the WAL flush
 * (`synchronous_commit = on`, set by the pool), so a resolved write survives a crash.
 *
 * Validation is the LevelDB store's, from key-codec.ts: same limits, same messages.
 */
import type pg from 'pg';
import { IsohostError } from '../../errors.ts';
import type { AppStore, BatchOp, JsonText, ListOptions, ListPage } from '../backend.ts';
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
} from '../key-codec.ts';
import { wrapPgError } from './pg-errors.ts';

/** What an app store needs from its tenant store. */
export interface PgAppStoreHost {
  /** Runs a query on the tenant's pool inside the purge guard; errors come out coded. */
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
  /** The quota in force, sent with every write. */
  quotaBytes(): number;
  /** Records the usage a write left (returned by `isohost_apply`). */
  noteUsage(bytes: number): void;
  /** A write is about to be sent. */
  writeStarted(): void;
  /** A write is answered; resolves once the usage view is settled (see PgTenantStore). */
  writeEnded(): Promise<void>;
}

const GET = 'SELECT value FROM entries WHERE space = $1 AND key = $2';
const APPLY = 'SELECT isohost_apply($1, $2, $3, $4, $5) AS used';
/**
 * One page: `before` is the size of the rows ahead of each row in this page, so the page
 * stops where LevelDB's loop stops (limit reached, or MAX_PAGE_BYTES already taken). The
 * value is sent only for rows inside the page; one row past it says whether more exist.
 */
const listSql = (startOp: '>=' | '>') => `
SELECT key, CASE WHEN before < $5 THEN value END AS value, before FROM (
  SELECT key, value,
         coalesce(sum(octet_length(key) + octet_length(value)) OVER (ORDER BY key ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
  FROM entries
  WHERE space = $1 AND key ${startOp} $2 AND ($3::bytea IS NULL OR key < $3)
  ORDER BY key
  LIMIT $4
) page ORDER BY key`;
/** A first page starts at the prefix itself (a key equal to it belongs); a next one strictly after the cursor. */
const LIST_FROM = listSql('>=');
const LIST_AFTER = listSql('>');

/** The smallest byte string above every string starting with `prefix`, or null when none exists. */
function prefixEnd(prefix: Buffer): Buffer | null {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return null;
  const bound = Buffer.from(prefix.subarray(0, end));
  bound[end - 1]++;
  return bound;
}

export class PgAppStore implements AppStore {
  readonly #host: PgAppStoreHost;
  readonly #space: string;
  readonly #limits: KeyspaceLimits;

  constructor(host: PgAppStoreHost, space: string, limits: KeyspaceLimits) {
    this.#host = host;
    this.#space = space;
    this.#limits = limits;
  }

  async get(key: string): Promise<JsonText | undefined> {
    assertKey(key);
    const result = await this.#host.query<{ value: Buffer }>({ name: 'isohost_get', text: GET, values: [this.#space, Buffer.from(key, 'utf8')] });
    return result.rows.length === 0 ? undefined : result.rows[0].value.toString('utf8');
  }

  async set(key: string, value: JsonText): Promise<void> {
    assertKey(key);
    assertValue(value, this.#limits.maxValueBytes);
    await this.#apply([false], [key], [value]);
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.#apply([true], [key], [null]);
  }

  async batch(ops: BatchOp[]): Promise<void> {
    this.#checkBatch(ops);
    if (ops.length === 0) return;
    await this.#apply(
      ops.map((op) => op.op === 'delete'),
      ops.map((op) => op.key),
      ops.map((op) => (op.op === 'set' ? op.value : null)),
    );
  }

  async list(options: ListOptions): Promise<ListPage> {
    const { prefix, limit, cursor } = options;
    assertPrefix(prefix);
    assertLimit(limit);
    const after = cursor === undefined ? undefined : decodeCursor(cursor, prefix);
    const prefixBytes = Buffer.from(prefix, 'utf8');
    // Keys sharing a prefix are contiguous in byte order: [prefix, prefixEnd).
    const start = after !== undefined ? Buffer.from(after, 'utf8') : prefixBytes;
    const result = await this.#host.query<{ key: Buffer; value: Buffer | null; before: string }>({
      name: after !== undefined ? 'isohost_list_after' : 'isohost_list_from',
      text: after !== undefined ? LIST_AFTER : LIST_FROM,
      values: [this.#space, start, prefixEnd(prefixBytes), limit + 1, MAX_PAGE_BYTES],
    });
    const entries: ListPage['entries'] = [];
    for (const row of result.rows) {
      if (entries.length >= limit || Number(row.before) >= MAX_PAGE_BYTES || row.value === null) break;
      entries.push({ key: row.key.toString('utf8'), value: row.value.toString('utf8') });
    }
    const more = result.rows.length > entries.length;
    return { entries, cursor: more && entries.length > 0 ? encodeCursor(entries[entries.length - 1].key) : null };
  }

  /** One call of isohost_apply: all ops or none, quota checked in the same transaction. */
  async #apply(deletes: boolean[], keys: string[], values: (string | null)[]): Promise<void> {
    const quota = this.#host.quotaBytes();
    this.#host.writeStarted();
    try {
      const result = await this.#host.query<{ used: string }>({
        name: 'isohost_apply',
        text: APPLY,
        values: [this.#space, deletes, keys.map((k) => Buffer.from(k, 'utf8')), values.map((v) => (v === null ? null : Buffer.from(v, 'utf8'))), quota],
      });
      this.#host.noteUsage(Number(result.rows[0].used));
    } catch (err) {
      const wrapped = wrapPgError(err);
      if (wrapped.code === 'resource_exhausted' && wrapped.details?.reason === 'quota') {
        const [used, delta] = String(wrapped.details.detail ?? '').split(' ').map(Number);
        if (Number.isFinite(used)) this.#host.noteUsage(used);
        throw new IsohostError('resource_exhausted', `storage quota exceeded (storage_mb): ${used} of ${quota} bytes used; this write needs ${delta} more`);
      }
      throw wrapped;
    } finally {
      await this.#host.writeEnded();
    }
  }

  /** Validates a whole batch before anything is sent (the LevelDB store's rules). */
  #checkBatch(ops: BatchOp[]): void {
    if (!Array.isArray(ops)) throw new IsohostError('invalid_request', 'batch must be an array of ops');
    if (ops.length > MAX_BATCH_OPS) {
      throw new IsohostError('invalid_request', `batch has ${ops.length} ops; the limit is ${MAX_BATCH_OPS}`);
    }
    let total = 0;
    ops.forEach((op, i) => {
      const where = `batch op ${i}`;
      if (typeof op !== 'object' || op === null || (op.op !== 'set' && op.op !== 'delete')) {
        throw new IsohostError('invalid_request', `${where}: op must be "set" or "delete"`);
      }
      assertKey(op.key, `${where}: key`);
      total += utf8Bytes(op.key) + (op.op === 'set' ? assertValue(op.value, this.#limits.maxValueBytes) : 0);
    });
    if (total > this.#limits.maxBatchBytes) {
      throw new IsohostError('payload_too_large', `batch is ${total} bytes; the limit is ${describeLimit(this.#limits.maxBatchBytes)}`);
    }
  }
}
