/**
 * Host half of `fc.log` and `console`. The guest's message and fields go under
 * `msg` and `fields`; tenant, app and instance come from the host-side child logger,
 * so a guest cannot forge them (issue 2, item 6).
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import { IsohostError } from '../../errors.ts';
import type { Binding, Reply } from '../types.ts';

const logPayload = z.strictObject({
  level: z.enum(['debug', 'info', 'warn', 'error']),
  message: z.string().max(8192),
  fields: z.unknown().optional(),
});
const EMPTY: Reply = { json: '' };
const MAX_FIELDS_CHARS = 16 * 1024;

export function logBinding(logger: Logger): Binding {
  return {
    ops: ['log'],
    async handle(_op, payload) {
      const p = logPayload.safeParse(payload);
      if (!p.success) throw new IsohostError('invalid_request', 'bad log call');
      let fields = p.data.fields;
      if (fields !== undefined && JSON.stringify(fields).length > MAX_FIELDS_CHARS) fields = { truncated: true };
      logger[p.data.level]({ source: 'miniapp', fields }, p.data.message);
      return EMPTY;
    },
  };
}
