/**
 * Instance ids name their node (issue 13): `i_<node_id>_<24 base64url characters>`, so any
 * node of a platform reads an instance's owner off its id and forwards a call for it
 * (http/forward.ts) without asking anyone. A node id is `[a-z0-9-]{1,63}` (no `_`), so the
 * first `_` after `i_` ends it; the random part (18 bytes) may hold `_` and `-`.
 * An id without a node (`i_<24 characters>`, a host built without one) belongs to the node
 * that reads it.
 */
import { randomFillSync } from 'node:crypto';

const WITH_NODE = /^i_([a-z0-9-]{1,63})_[A-Za-z0-9_-]{24}$/;

/** Random bytes of one id. */
const ID_BYTES = 18;
/**
 * Random bytes for the next 128 ids, each byte handed out once; refilled when spent. One
 * `randomBytes(18)` a launch cost 5 µs back to back but 60 µs after the event loop had
 * idled 25 ms (the bench box; the syscall and OpenSSL's code run cold), on every launch's
 * path. Node's `randomUUID` keeps such a cache for the same reason.
 */
const pool = Buffer.alloc(ID_BYTES * 128);
let taken = pool.length;

/**
 * @example
 * newInstanceId('node-1'); // 'i_node-1_3q2b…'
 */
export function newInstanceId(nodeId: string | undefined): string {
  if (taken + ID_BYTES > pool.length) {
    randomFillSync(pool);
    taken = 0;
  }
  const random = pool.toString('base64url', taken, (taken += ID_BYTES));
  return nodeId === undefined ? `i_${random}` : `i_${nodeId}_${random}`;
}

/** The node an instance id names, or null when it names none (or is not an instance id at all). */
export function ownerOf(instanceId: string): string | null {
  return WITH_NODE.exec(instanceId)?.[1] ?? null;
}
