/**
 * Instance ids (src/sandbox/instance-id.ts): they name their node, and their random part
 * comes from a cache of random bytes refilled every 128 ids, each byte used once.
 */
import { describe, expect, it } from 'vitest';
import { newInstanceId, ownerOf } from '../../src/sandbox/instance-id.ts';

describe('instance ids', () => {
  it('should name the node, and be unique across many refills of the random cache', () => {
    const ids = Array.from({ length: 1000 }, () => newInstanceId('node-1'));
    expect(new Set(ids).size).toBe(ids.length);
    // No two ids share their random part, either: each cached byte is handed out once.
    expect(new Set(ids.map((id) => id.slice('i_node-1_'.length))).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).toMatch(/^i_node-1_[A-Za-z0-9_-]{24}$/);
      expect(ownerOf(id)).toBe('node-1');
    }
  });

  it('should make ids without a node that belong to no named node', () => {
    const id = newInstanceId(undefined);
    expect(id).toMatch(/^i_[A-Za-z0-9_-]{24}$/);
    expect(ownerOf(id)).toBeNull();
  });
});
