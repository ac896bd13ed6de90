/**
 * The host half of `fc.storage`. It holds one `AppStore` (closed over the launching
 * tenant and app) and nothing that could name another: every payload is guest input,
 * validated here with zod and the storage limits before the store sees it.
 *
 * Values cross as JSON text: the guest sends `JSON.stringify(value)`, the host checks
 * it parses once, stores the text, and splices stored text into replies unparsed.
 */
import { z } from 'zod';
import { IsohostError, toIsohostError } from '../../errors.ts';
import type { AppStore, BatchOp } from '../../storage/backend.ts';
import { assertKey, assertLimit, assertPrefix, assertValue, MAX_BATCH_OPS } from '../../storage/key-codec.ts';
import type { Binding, Reply } from '../types.ts';

export const STORAGE_OPS = ['storage.get', 'storage.set', 'storage.delete', 'storage.list', 'storage.batch'] as const;
const DEFAULT_LIST_LIMIT = 100;

const keyPayload = z.strictObject({ key: z.string() });
const setPayload = z.strictObject({ key: z.string(), value: z.string() });
const listPayload = z
  .strictObject({
    prefix: z.string().optional(),
    limit: z.number().optional(),
    cursor: z.string().nullable().optional(),
  })
  .optional();
const batchPayload = z.strictObject({ ops: z.array(z.unknown()) });
const batchOp = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('set'), key: z.string(), value: z.string() }),
  z.strictObject({ op: z.literal('delete'), key: z.string() }),
]);

const OK: Reply = { json: '{"ok":true}' };

/** zod's first issue as `op: path: message`; the path names the guest's own field. */
function parse<T>(schema: z.ZodType<T>, payload: unknown, where: string): T {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new IsohostError('invalid_request', `${where}: ${path}${issue.message}`);
}

/** A value is JSON text of at most 1 MiB; checked by size first so huge text is never parsed. */
function checkValue(value: string, where: string): void {
  assertValue(value);
  try {
    JSON.parse(value);
  } catch {
    throw new IsohostError('invalid_request', `${where}: value must be JSON text (as produced by JSON.stringify)`);
  }
}

function checkBatch(payload: unknown): BatchOp[] {
  const { ops } = parse(batchPayload, payload, 'storage.batch');
  // Count before parsing each op: a million-op payload is refused without the work.
  if (ops.length > MAX_BATCH_OPS) {
    throw new IsohostError('invalid_request', `batch has ${ops.length} ops; the limit is ${MAX_BATCH_OPS}`);
  }
  return ops.map((raw, i) => {
    const op = parse(batchOp, raw, `storage.batch: ops.${i}`);
    assertKey(op.key);
    if (op.op === 'set') checkValue(op.value, `storage.batch: ops.${i}`);
    return op;
  });
}

async function dispatch(store: AppStore, op: string, payload: unknown): Promise<Reply> {
  switch (op) {
    case 'storage.get': {
      const { key } = parse(keyPayload, payload, op);
      assertKey(key);
      const value = await store.get(key);
      return { json: `{"value":${value ?? 'null'}}` };
    }
    case 'storage.set': {
      const { key, value } = parse(setPayload, payload, op);
      assertKey(key);
      checkValue(value, op);
      await store.set(key, value);
      return OK;
    }
    case 'storage.delete': {
      const { key } = parse(keyPayload, payload, op);
      assertKey(key);
      await store.delete(key);
      return OK;
    }
    case 'storage.list': {
      const options = parse(listPayload, payload, op) ?? {};
      const prefix = options.prefix ?? '';
      const limit = options.limit ?? DEFAULT_LIST_LIMIT;
      assertPrefix(prefix);
      assertLimit(limit);
      const page = await store.list({ prefix, limit, cursor: options.cursor ?? undefined });
      const entries = page.entries.map((e) => `{"key":${JSON.stringify(e.key)},"value":${e.value}}`);
      return { json: `{"entries":[${entries.join(',')}],"cursor":${JSON.stringify(page.cursor)}}` };
    }
    case 'storage.batch': {
      await store.batch(checkBatch(payload));
      return OK;
    }
    default:
      throw new IsohostError('invalid_request', 'unknown storage op');
  }
}

/**
 * The `fc.storage` binding for one app of one tenant.
 *
 * Replies: `get` → `{"value": <JSON or null>}`; `list` → `{"entries":[{"key","value"}],
 * "cursor": string|null}`; `set`, `delete`, `batch` → `{"ok":true}` once durable.
 * Failures are always `IsohostError`s (`invalid_request`, `payload_too_large`,
 * `resource_exhausted`, `storage_error`); anything unexpected becomes `internal`.
 *
 * @example
 * const binding = storageBinding(tenantStore.app('notes'));
 * await binding.handle('storage.set', { key: 'k', value: '{"a":1}' }, undefined, scope);
 */
export function storageBinding(store: AppStore): Binding {
  return {
    ops: STORAGE_OPS,
    async handle(op, payload) {
      try {
        return await dispatch(store, op, payload);
      } catch (err) {
        throw toIsohostError(err);
      }
    },
  };
}
