/**
 * Turns node-postgres errors into coded `storage_error`s. PostgreSQL messages name
 * roles, schemas and hosts, so the original is kept only as `cause` for host logs;
 * the message a caller sees is generic.
 */
import { IsohostError } from '../../errors.ts';
import { QUOTA_SQLSTATE } from './ddl.ts';

/** SQLSTATE classes and codes we tell apart. */
const CONNECTION_CLASS = '08';
const OPERATOR_INTERVENTION = '57'; // admin shutdown, crash shutdown, cannot connect now
const INSUFFICIENT_PRIVILEGE = '42501';

function sqlstate(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A network-level failure: refused, reset, timed out, or the server went away. */
function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT…
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}

/** Wraps anything a `pg` call threw; an IsohostError passes through unchanged. */
export function wrapPgError(err: unknown): IsohostError {
  if (err instanceof IsohostError) return err;
  const state = sqlstate(err);
  const options = { cause: err };
  if (state === QUOTA_SQLSTATE) {
    // Raised by the write functions (ddl.ts); DETAIL is "<used> <delta>". The quota is filled in by the caller.
    return new IsohostError('resource_exhausted', 'storage quota exceeded (storage_mb)', { ...options, details: { reason: 'quota', detail: (err as { detail?: string }).detail } });
  }
  if (isUnreachable(err) || state?.startsWith(CONNECTION_CLASS) || state?.startsWith(OPERATOR_INTERVENTION)) {
    return new IsohostError('storage_error', 'storage is unavailable: PostgreSQL cannot be reached', options);
  }
  if (state === INSUFFICIENT_PRIVILEGE) {
    return new IsohostError('storage_error', 'storage failed: PostgreSQL refused the tenant role access', options);
  }
  return new IsohostError('storage_error', 'storage failed: a PostgreSQL read or write error', options);
}

/** Awaits a `pg` promise, wrapping its failure. */
export async function pgCall<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw wrapPgError(err);
  }
}

/** True when the error is a PostgreSQL permission refusal (for provisioning). */
export function isPermissionError(err: unknown): boolean {
  return sqlstate(err) === INSUFFICIENT_PRIVILEGE;
}

/** True when a concurrent node created the same object first (duplicate object / unique violation). */
export function isAlreadyThere(err: unknown): boolean {
  const state = sqlstate(err);
  return state === '42710' || state === '42P06' || state === '42P04' || state === '23505';
}
