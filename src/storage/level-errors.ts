/**
 * Turns classic-level errors into coded `storage_error`s. LevelDB messages carry host
 * paths (`IO error: lock /data/tenants/acme/LOCK: already held by process`), so the
 * original is kept only as `cause` for host logs; the message is generic.
 */
import { IsohostError } from '../errors.ts';

/** The `code` of a level error, or of its cause (open failures nest LEVEL_LOCKED). */
function levelCodes(err: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** Wraps anything a LevelDB call threw; an IsohostError passes through unchanged. */
export function wrapLevelError(err: unknown): IsohostError {
  if (err instanceof IsohostError) return err;
  const codes = levelCodes(err);
  const options = { cause: err };
  if (codes.includes('LEVEL_LOCKED')) {
    // `details.reason` lets the tenant registry tell a lock (another isohost) from damage; never sent to a caller.
    const details = { reason: 'locked' };
    return new IsohostError('storage_error', 'storage is locked: another process (or another handle in this one) has the store open', { ...options, details });
  }
  if (codes.includes('LEVEL_CORRUPTION')) {
    return new IsohostError('storage_error', 'storage is corrupt: the store cannot be read', options);
  }
  // Without a cause this is an operation on a closed DB; with one, a failed open (reason in the cause).
  if (codes[0] === 'LEVEL_DATABASE_NOT_OPEN' && (err as { cause?: unknown }).cause === undefined) {
    return new IsohostError('storage_error', 'storage is not open (closed, or being purged)', options);
  }
  return new IsohostError('storage_error', 'storage failed: a read or write error in the store', options);
}

/** Awaits a LevelDB promise, wrapping its failure. */
export async function level<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw wrapLevelError(err);
  }
}

/**
 * Runs a synchronous LevelDB call, wrapping what it throws: `iterator()` on a closed
 * database throws at once, outside any promise (THREATS A5: no raw level error leaves).
 */
export function levelSync<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw wrapLevelError(err);
  }
}
