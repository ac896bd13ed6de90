/**
 * One app's keyspace (or the tenant's platform records) on PostgreSQL. Every statement
 * runs on the tenant's pool, whose sessions hold the tenant's role and schema, and is
 * one round trip: a read is one SELECT; a write is one call of a write function of ddl.ts
 * (`isohost_set`, `isohost_delete`, or `isohost_apply` for a batch of several ops), which
 * writes and checks the quota in the same transaction. Commits wait for the WAL flush
 * (`synchronous_commit = on`, set by the pool), so a resolved write survives a crash.
 *
 * Validation is the LevelDB store's, from key-codec.ts: same limits, same messages.
 *
 * A read is sent at once when no read of this keyspace is in flight; reads that arrive
 * while one is wait, and the next statement carries all of them (`key = ANY(…)`). One
 * statement is one write to a socket and one wake-up of a server process, and on the bench
 * box those were the dearest part of a read: the pg client's `writev` alone took 10 % of
 * the host's CPU in `http.call.storage.postgres`, ~90 µs a query. Calls queued on one
 * instance run one after another, so their reads do too, and what waits is one read per
 * busy instance. In that bench (up to four instances) a statement carried 1.26 reads when
 * two could be in flight, 1.81 with one; the server's CPU per call fell from 56–66 to
 * 38–41 µs, and the rps against LevelDB's went from 56–62 % to 62–66 % (three alternated pairs).
 * A read waits for the read ahead of it to end, and sees every write acknowledged before
 * it was asked for, as a read on its own does: the SELECT that carries it is sent after.
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
  /** Records the usage a write left (returned by the write function when the write changed it). */
  noteUsage(bytes: number): void;
  /** A write is about to be sent. */
  writeStarted(): void;
  /** A write is answered; resolves once the usage view is settled (see PgTenantStore). */
  writeEnded(): Promise<void>;
}

const GET = 'SELECT value FROM entries WHERE space = $1 AND key = $2';
const GET_MANY = 'SELECT key, value FROM entries WHERE space = $1 AND key = ANY($2::bytea[])';
const SET = 'SELECT isohost_set($1, $2, $3, $4) AS used';
const DELETE = 'SELECT isohost_delete($1, $2) AS used';
const APPLY = 'SELECT isohost_apply($1, $2, $3, $4, $5) AS used';
/** Reads of one keyspace in flight at once; more wait and go together (see the file comment). */
const READS_AT_ONCE = 1;
/** Keys one read carries at most. */
const KEYS_PER_READ = 256;

/** A read waiting for its turn. */
interface PendingGet {
  readonly key: Buffer;
  readonly resolve: (value: JsonText | undefined) => void;
  readonly reject: (err: unknown) => void;
}

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
  readonly #pending: PendingGet[] = [];
  #reading = 0;

  constructor(host: PgAppStoreHost, space: string, limits: KeyspaceLimits) {
    this.#host = host;
    this.#space = space;
    this.#limits = limits;
  }

  async get(key: string): Promise<JsonText | undefined> {
    assertKey(key);
    return new Promise<JsonText | undefined>((resolve, reject) => {
      this.#pending.push({ key: Buffer.from(key, 'utf8'), resolve, reject });
      this.#pumpReads();
    });
  }

  /** Sends the waiting reads, as many at once as READS_AT_ONCE lets, each read carrying up to KEYS_PER_READ of them. */
  #pumpReads(): void {
    while (this.#reading < READS_AT_ONCE && this.#pending.length > 0) {
      const gets = this.#pending.splice(0, KEYS_PER_READ);
      this.#reading++;
      void this.#read(gets).finally(() => {
        this.#reading--;
        this.#pumpReads();
      });
    }
  }

  async #read(gets: PendingGet[]): Promise<void> {
    try {
      if (gets.length === 1) {
        const result = await this.#host.query<{ value: Buffer }>({ name: 'isohost_get', text: GET, values: [this.#space, gets[0]!.key] });
        gets[0]!.resolve(result.rows.length === 0 ? undefined : result.rows[0].value.toString('utf8'));
        return;
      }
      const result = await this.#host.query<{ key: Buffer; value: Buffer }>({ name: 'isohost_get_many', text: GET_MANY, values: [this.#space, gets.map((g) => g.key)] });
      const found = new Map<string, string>();
      for (const row of result.rows) found.set(row.key.toString('latin1'), row.value.toString('utf8'));
      for (const g of gets) g.resolve(found.get(g.key.toString('latin1')));
    } catch (err) {
      for (const g of gets) g.reject(err);
    }
  }

  async set(key: string, value: JsonText): Promise<void> {
    assertKey(key);
    assertValue(value, this.#limits.maxValueBytes);
    await this.#set(key, value);
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.#delete(key);
  }

  async batch(ops: BatchOp[]): Promise<void> {
    this.#checkBatch(ops);
    if (ops.length === 0) return;
    // One op is one set or delete: the same transaction, without the arrays.
    if (ops.length === 1) {
      const [op] = ops;
      return op.op === 'set' ? this.#set(op.key, op.value) : this.#delete(op.key);
    }
    const quota = this.#host.quotaBytes();
    await this.#write(quota, {
      name: 'isohost_apply',
      text: APPLY,
      values: [
        this.#space,
        ops.map((op) => op.op === 'delete'),
        ops.map((op) => Buffer.from(op.key, 'utf8')),
        ops.map((op) => (op.op === 'set' ? Buffer.from(op.value, 'utf8') : null)),
        quota,
      ],
    });
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

  #set(key: string, value: JsonText): Promise<void> {
    const quota = this.#host.quotaBytes();
    return this.#write(quota, { name: 'isohost_set', text: SET, values: [this.#space, Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8'), quota] });
  }

  #delete(key: string): Promise<void> {
    return this.#write(this.#host.quotaBytes(), { name: 'isohost_delete', text: DELETE, values: [this.#space, Buffer.from(key, 'utf8')] });
  }

  /** One call of a write function: all of it or nothing, the quota checked in the same transaction. */
  async #write(quota: number, statement: pg.QueryConfig): Promise<void> {
    this.#host.writeStarted();
    try {
      const result = await this.#host.query<{ used: string | null }>(statement);
      // NULL: the write left the usage as it was.
      const used = result.rows[0].used;
      if (used !== null) this.#host.noteUsage(Number(used));
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
