/**
 * Every error code isohost emits, in one table (fastify's FST_ERR_* habit).
 * Each code maps once to an HTTP status; `test/errors.test.ts` fails when a code
 * is missing from README.md. Codes cross the isolate boundary as `{ code, message }`
 * (isolated-vm keeps only name/message/stack of thrown values).
 */
export const ERROR_CODES = {
  unauthenticated: { status: 401, doc: 'No, malformed, expired or foreign-realm token.' },
  forbidden: { status: 403, doc: 'Verified token without the needed scope.' },
  not_found: { status: 404, doc: 'No such app, method or instance for this tenant and subject.' },
  invalid_request: { status: 400, doc: 'Bad input: arguments, bundle, key, value, config, URL.' },
  payload_too_large: { status: 413, doc: 'Body, bundle, value or batch over its size limit.' },
  unsupported_media_type: { status: 415, doc: 'A request body of a content type the route does not take (calls: application/json; uploads: application/javascript).' },
  miniapp_error: { status: 422, doc: 'The mini-app threw; message and bundle line included (src/file.ts:line when the bundle carries an inline source map).' },
  timeout: { status: 504, doc: 'Wall-clock or CPU limit of a call reached; the instance is disposed.' },
  resource_exhausted: { status: 429, doc: 'Memory, storage quota, instance cap, concurrency or rate limit.' },
  egress_denied: { status: 403, doc: 'fc.fetch target not allowed by the tenant network policy.' },
  egress_failed: { status: 502, doc: 'The egress proxy or the upstream failed (DNS, connect, reset).' },
  storage_error: { status: 503, doc: 'The tenant store failed (locked, corrupt, disk full).' },
  unavailable: { status: 503, doc: 'The host is starting, shutting down or a dependency is down.' },
  config_invalid: { status: 500, doc: 'The platform config failed validation (CLI exit 2).' },
  internal: { status: 500, doc: 'A bug in isohost; details are logged, never returned.' },
} as const satisfies Record<string, { status: number; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * The one error class of isohost. `message` is safe to show to the caller:
 * never a host path, stack, credential or another tenant's name.
 *
 * @example
 * throw new IsohostError('payload_too_large', 'value is 2097152 bytes; the limit is 1 MiB');
 */
export class IsohostError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IsohostError';
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Wraps anything thrown into an IsohostError without leaking its message. */
export function toIsohostError(err: unknown): IsohostError {
  if (err instanceof IsohostError) return err;
  return new IsohostError('internal', 'internal error', { cause: err });
}
