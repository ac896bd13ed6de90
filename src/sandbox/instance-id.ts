/**
 * Instance ids name their node (issue 13): `i_<node_id>_<24 base64url characters>`, so any
 * node of a platform reads an instance's owner off its id and forwards a call for it
 * (http/forward.ts) without asking anyone. A node id is `[a-z0-9-]{1,63}` (no `_`), so the
 * first `_` after `i_` ends it; the random part (18 bytes) may hold `_` and `-`.
 * An id without a node (`i_<24 characters>`, a host built without one) belongs to the node
 * that reads it.
 */
import { randomBytes } from 'node:crypto';

const WITH_NODE = /^i_([a-z0-9-]{1,63})_[A-Za-z0-9_-]{24}$/;

/**
 * @example
 * newInstanceId('node-1'); // 'i_node-1_3q2b…'
 */
export function newInstanceId(nodeId: string | undefined): string {
  const random = randomBytes(18).toString('base64url');
  return nodeId === undefined ? `i_${random}` : `i_${nodeId}_${random}`;
}

/** The node an instance id names, or null when it names none (or is not an instance id at all). */
export function ownerOf(instanceId: string): string | null {
  return WITH_NODE.exec(instanceId)?.[1] ?? null;
}
