/**
 * One error shape for every response: `{ "error": { "code", "message" } }`, the status
 * taken from the code table in src/errors.ts. Fastify's own errors (body too large,
 * bad JSON, bad content type, schema validation) are mapped to our codes here. A 429
 * carries `Retry-After` (RFC 9110 §10.2.3) in whole seconds: the tenant gate's
 * `details.retryAfterMs` when it knows when a call will be admitted, else 1.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { ERROR_CODES, IsohostError, type ErrorCode } from '../errors.ts';

function fromFastify(err: FastifyError): IsohostError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new IsohostError('payload_too_large', 'request body is over the size limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new IsohostError('unsupported_media_type', 'unsupported content type: calls take application/json, uploads application/javascript');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new IsohostError('invalid_request', 'request body is not valid JSON');
    default:
      break;
  }
  if (err.validation) return new IsohostError('invalid_request', err.message);
  if (err instanceof SyntaxError) return new IsohostError('invalid_request', 'request body is not valid JSON');
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    const code = err.statusCode === 413 ? 'payload_too_large' : err.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request';
    return new IsohostError(code, err.message);
  }
  return undefined;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const e = err instanceof IsohostError ? err : (fromFastify(err) ?? new IsohostError('internal', 'internal error'));
    if (e.code === 'internal') request.log.error({ err }, 'internal error');
    else request.log.info({ code: e.code }, e.message);
    if (e.code === 'resource_exhausted') void reply.header('retry-after', String(retryAfterSeconds(e)));
    void reply.status(ERROR_CODES[e.code].status).send(e.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(new IsohostError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`).toJSON());
  });
}

/** Whole seconds until a call may be admitted again (at least 1: 0 would invite a tight retry loop). */
function retryAfterSeconds(e: IsohostError): number {
  const ms = e.details?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : 1;
}

export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}
