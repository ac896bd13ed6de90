/**
 * The nodes of one PostgreSQL platform (`isohost_platform.nodes`, platform-schema.ts): each
 * `serve` records its `deployment.node_id` and the address its HTTP API is reached at, and
 * beats every HEARTBEAT_MS. A node looking up another one (to forward a call for an
 * instance it owns, http/forward.ts) gets its address, or a coded `unavailable` when the
 * node is unknown, has left, or has not beaten for DEAD_AFTER_MS. Ages are PostgreSQL's
 * clock against itself (`now() - heartbeat_at`), so the nodes' clocks need not agree.
 */
import { IsohostError } from '../../errors.ts';
import { PLATFORM_SCHEMA, type PlatformDb } from './platform-schema.ts';

export const HEARTBEAT_MS = 2_000;
/** Several missed beats: a node this silent is taken for dead. */
export const DEAD_AFTER_MS = 10_000;
/** How long a looked-up address is reused before asking PostgreSQL again. */
const LOOKUP_TTL_MS = 1_000;

export class NodeDirectory {
  readonly nodeId: string;
  readonly #db: PlatformDb;
  readonly #onBeatError: (err: unknown) => void;
  #address: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #cache = new Map<string, { at: number; address: string | null; reason: string }>();

  /** `onBeatError`: a failed heartbeat (PostgreSQL down) is reported, and the next beat retries. */
  constructor(db: PlatformDb, nodeId: string, onBeatError: (err: unknown) => void = () => {}) {
    this.#db = db;
    this.nodeId = nodeId;
    this.#onBeatError = onBeatError;
  }

  /**
   * Records this node's address and starts beating. Refused (config_invalid) when another
   * live node already uses this node id at another address: two nodes of one id would take
   * each other's forwarded calls.
   */
  async announce(address: string): Promise<void> {
    const row = (
      await this.#db.query<{ address: string; age_ms: number }>(
        `SELECT address, extract(epoch FROM now() - heartbeat_at) * 1000 AS age_ms FROM ${PLATFORM_SCHEMA}.nodes WHERE node_id = $1`,
        [this.nodeId],
      )
    ).rows[0];
    if (row !== undefined && row.address !== address && Number(row.age_ms) < DEAD_AFTER_MS) {
      throw new IsohostError('config_invalid', `deployment.node_id "${this.nodeId}" is in use by a live node at ${row.address}; give every node its own node_id`);
    }
    await this.#db.query(
      `INSERT INTO ${PLATFORM_SCHEMA}.nodes (node_id, address, started_at, heartbeat_at) VALUES ($1, $2, now(), now())
       ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, started_at = now(), heartbeat_at = now()`,
      [this.nodeId, address],
    );
    this.#address = address;
    this.#timer = setInterval(() => void this.#beat(), HEARTBEAT_MS);
    this.#timer.unref();
  }

  /** The address of a live node, or unavailable naming why it cannot be reached. */
  async addressOf(nodeId: string): Promise<string> {
    const cached = this.#cache.get(nodeId);
    const entry = cached !== undefined && Date.now() - cached.at < LOOKUP_TTL_MS ? cached : await this.#lookup(nodeId);
    if (entry.address === null) throw new IsohostError('unavailable', `the instance's node ${nodeId} is not reachable (${entry.reason})`, { details: { reason: 'node_unreachable', node: nodeId } });
    return entry.address;
  }

  /** Forgets a cached address (a forward to it just failed). */
  forget(nodeId: string): void {
    this.#cache.delete(nodeId);
  }

  /** Stops beating and removes this node's row: calls for its instances fail at once as unavailable. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#address !== null) {
      await this.#db.query(`DELETE FROM ${PLATFORM_SCHEMA}.nodes WHERE node_id = $1 AND address = $2`, [this.nodeId, this.#address]).catch(() => {});
    }
    this.#address = null;
  }

  async #lookup(nodeId: string): Promise<{ at: number; address: string | null; reason: string }> {
    const row = (
      await this.#db.query<{ address: string; age_ms: number }>(
        `SELECT address, extract(epoch FROM now() - heartbeat_at) * 1000 AS age_ms FROM ${PLATFORM_SCHEMA}.nodes WHERE node_id = $1`,
        [nodeId],
      )
    ).rows[0];
    const entry =
      row === undefined
        ? { at: Date.now(), address: null, reason: 'no such node is running' }
        : Number(row.age_ms) >= DEAD_AFTER_MS
          ? { at: Date.now(), address: null, reason: `no heartbeat for ${Math.round(Number(row.age_ms) / 1000)} s` }
          : { at: Date.now(), address: row.address, reason: '' };
    this.#cache.set(nodeId, entry);
    return entry;
  }

  async #beat(): Promise<void> {
    if (this.#address === null) return;
    try {
      // Re-inserted if it went missing (e.g. a restored database): a live node stays findable.
      await this.#db.query(
        `INSERT INTO ${PLATFORM_SCHEMA}.nodes (node_id, address, started_at, heartbeat_at) VALUES ($1, $2, now(), now())
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now() WHERE ${PLATFORM_SCHEMA}.nodes.address = EXCLUDED.address`,
        [this.nodeId, this.#address],
      );
    } catch (err) {
      this.#onBeatError(err);
    }
  }
}
