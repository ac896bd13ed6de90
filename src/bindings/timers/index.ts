/**
 * Host half of `setTimeout`: a sleep owned by the current call. It never outlives the
 * call: when the call ends its signal aborts and the sleep is dropped (THREATS B16),
 * and a delay past the call's deadline simply lets the deadline end the call.
 */
import { z } from 'zod';
import { IsohostError } from '../../errors.ts';
import type { Binding, Reply } from '../types.ts';

const timerPayload = z.strictObject({ ms: z.number().min(0).max(2_147_483_647) });
const EMPTY: Reply = { json: '' };

export function timerBinding(): Binding {
  return {
    ops: ['timer'],
    handle(_op, payload, _bytes, scope) {
      const p = timerPayload.safeParse(payload);
      if (!p.success) return Promise.reject(new IsohostError('invalid_request', 'bad timer call'));
      return new Promise<Reply>((resolve) => {
        const t = setTimeout(() => resolve(EMPTY), p.data.ms);
        scope.signal.addEventListener('abort', () => clearTimeout(t), { once: true });
      });
    },
  };
}
