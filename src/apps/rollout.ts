/**
 * Which version of an app serves a caller (issue 12). A rollout maps approved versions to
 * whole percentages summing to 100; a caller falls in one of 100 buckets by a stable hash
 * of (app, sub), and the buckets are dealt to the versions in the order they were uploaded.
 * So a subject stays on one version while the shares stand, and moving 10 % more to a
 * version moves only the subjects of those 10 buckets.
 */
import { hash } from 'node:crypto';
import { IsohostError } from '../errors.ts';

/** Shares of the rollout: version -> whole percent (1..100), summing to 100; empty = serves nobody. */
export type Rollout = Record<string, number>;

/**
 * The bucket (0..99) of a subject for an app: the first 4 bytes of sha256(app NUL sub),
 * big-endian, mod 100. The NUL keeps ("ab","c") and ("a","bc") apart.
 *
 * @example
 * bucketOf('notes', 'alice'); // the same number on every node, every time
 */
export function bucketOf(appId: string, sub: string): number {
  // One-shot hash: no Hash object per call of a split rollout.
  return hash('sha256', `${appId}\u0000${sub}`, 'buffer').readUInt32BE(0) % 100;
}

/**
 * The version serving `bucket`, walking `order` (upload order) over cumulative shares;
 * undefined when the rollout is empty.
 */
export function versionForBucket(rollout: Readonly<Rollout>, order: readonly string[], bucket: number): string | undefined {
  let upTo = 0;
  for (const version of order) {
    const share = rollout[version];
    if (share === undefined) continue;
    upTo += share;
    if (bucket < upTo) return version;
  }
  return undefined;
}

/** The version with the largest share (the first uploaded on a tie), or '' for an empty rollout. */
export function leadingVersion(rollout: Readonly<Rollout>, order: readonly string[]): string {
  let best = '';
  for (const version of order) if ((rollout[version] ?? 0) > (rollout[best] ?? 0)) best = version;
  return best;
}

/**
 * Checks a requested rollout: 1..16 versions, each approved, whole percentages 1..100
 * summing to 100. Throws invalid_request naming the first fault.
 */
export function checkRollout(requested: unknown, approved: ReadonlySet<string>): Rollout {
  if (typeof requested !== 'object' || requested === null || Array.isArray(requested)) {
    throw new IsohostError('invalid_request', 'versions must be an object of version -> percent');
  }
  const entries = Object.entries(requested);
  if (entries.length === 0 || entries.length > 16) throw new IsohostError('invalid_request', 'a rollout names 1 to 16 versions');
  let sum = 0;
  const out: Rollout = {};
  for (const [version, share] of entries) {
    if (!approved.has(version)) throw new IsohostError('invalid_request', `version "${version.slice(0, 64)}" is not an approved version of this app`);
    if (typeof share !== 'number' || !Number.isInteger(share) || share < 1 || share > 100) {
      throw new IsohostError('invalid_request', `the share of version ${version} must be a whole percent from 1 to 100`);
    }
    out[version] = share;
    sum += share;
  }
  if (sum !== 100) throw new IsohostError('invalid_request', `the shares sum to ${sum}; they must sum to 100`);
  return out;
}
