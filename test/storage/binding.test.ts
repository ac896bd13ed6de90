/**
 * The host half of fc.storage: guest payloads are untrusted. Every bad payload is a
 * coded IsohostError naming the limit, and nothing is written.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storageBinding } from '../../src/bindings/storage/index.ts';
import type { Binding, CallScope } from '../../src/bindings/types.ts';
import { IsohostError } from '../../src/errors.ts';
import type { TenantStore } from '../../src/storage/backend.ts';
import { listAll, MiB, storageFixture, tenantSpec } from '../helpers/storage-backend.ts';

const scope: CallScope = Object.freeze({
  instanceId: 'i-1',
  appId: 'notes',
  appVersion: '1',
  tenantId: 't',
  signal: new AbortController().signal,
  deadline: Date.now() + 60_000,
});

let fx: Awaited<ReturnType<typeof storageFixture>>;
let tenant: TenantStore;
let binding: Binding;

beforeEach(async () => {
  fx = await storageFixture();
  tenant = await fx.backend().open(tenantSpec('bind', 'schema'));
  binding = storageBinding(tenant.app('notes'));
});
afterEach(() => fx.dispose());

const call = async (op: string, payload: unknown) => JSON.parse((await binding.handle(op, payload, undefined, scope)).json);

describe('storage binding: valid payloads', () => {
  it('should set, get, list, delete and batch with JSON text values', async () => {
    expect(binding.ops).toEqual(['storage.get', 'storage.set', 'storage.delete', 'storage.list', 'storage.batch']);
    expect(await call('storage.get', { key: 'missing' })).toEqual({ value: null });
    expect(await call('storage.set', { key: 'user:1', value: '{"name":"Ada","tags":["x"]}' })).toEqual({ ok: true });
    expect(await call('storage.get', { key: 'user:1' })).toEqual({ value: { name: 'Ada', tags: ['x'] } });
    expect(await call('storage.set', { key: '\u0000"quoted"', value: '"\\u2028 \\"s\\""' })).toEqual({ ok: true });
    expect(await call('storage.batch', { ops: [{ op: 'set', key: 'user:2', value: 'null' }, { op: 'delete', key: 'user:1' }] })).toEqual({ ok: true });
    expect(await call('storage.list', {})).toEqual({
      entries: [{ key: '\u0000"quoted"', value: '\u2028 "s"' }, { key: 'user:2', value: null }],
      cursor: null,
    });
    expect(await call('storage.list', { prefix: 'user:', limit: 1, cursor: null })).toMatchObject({ entries: [{ key: 'user:2' }], cursor: null });
    expect(await call('storage.delete', { key: 'user:2' })).toEqual({ ok: true });
    expect(await call('storage.list', undefined)).toEqual({ entries: [{ key: '\u0000"quoted"', value: '\u2028 "s"' }], cursor: null });
  });

  it('should default list to 100 entries and page with the returned cursor', async () => {
    await tenant.app('notes').batch(Array.from({ length: 150 }, (_, i) => ({ op: 'set' as const, key: `k${String(i).padStart(3, '0')}`, value: String(i) })));
    const first = await call('storage.list', { prefix: 'k' });
    expect(first.entries).toHaveLength(100);
    expect(typeof first.cursor).toBe('string');
    const second = await call('storage.list', { prefix: 'k', cursor: first.cursor });
    expect(second.entries.map((e: { value: number }) => e.value)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    expect(second.cursor).toBeNull();
  });

  it('should accept a value of exactly 1 MiB and a key of exactly 512 bytes', async () => {
    const value = JSON.stringify('x'.repeat(MiB - 2));
    await call('storage.set', { key: 'é'.repeat(256), value });
    expect((await binding.handle('storage.get', { key: 'é'.repeat(256) }, undefined, scope)).json).toBe(`{"value":${value}}`);
  });
});

describe('storage binding: bad payloads', () => {
  const twoMiB = JSON.stringify('x'.repeat(2 * MiB - 2));
  const cases: [string, unknown, string, RegExp?][] = [
    ['storage.get', undefined, 'invalid_request'],
    ['storage.get', null, 'invalid_request'],
    ['storage.get', 'k', 'invalid_request'],
    ['storage.get', {}, 'invalid_request'],
    ['storage.get', { key: '' }, 'invalid_request', /1\.\.512 UTF-8 bytes/],
    ['storage.get', { key: 7 }, 'invalid_request'],
    ['storage.get', { key: 'k', extra: 1 }, 'invalid_request'],
    ['storage.get', JSON.parse('{"key":"k","__proto__":{"admin":true}}'), 'invalid_request'],
    ['storage.set', { key: 'k' }, 'invalid_request'],
    ['storage.set', { key: 'k', value: 1 }, 'invalid_request'],
    ['storage.set', { key: 'k', value: { a: 1 } }, 'invalid_request'],
    ['storage.set', { key: '', value: '1' }, 'invalid_request', /key must be 1\.\.512 UTF-8 bytes/],
    ['storage.set', { key: 'x'.repeat(513), value: '1' }, 'invalid_request', /key must be 1\.\.512 UTF-8 bytes \(got 513\)/],
    ['storage.set', { key: 'é'.repeat(257), value: '1' }, 'invalid_request', /512/],
    ['storage.set', { key: '\ud800', value: '1' }, 'invalid_request', /well-formed/],
    ['storage.set', { key: 'k', value: 'not json' }, 'invalid_request', /JSON/],
    ['storage.set', { key: 'k', value: '' }, 'invalid_request', /JSON/],
    ['storage.set', { key: 'k', value: '{"a":1} {"b":2}' }, 'invalid_request', /JSON/],
    ['storage.set', { key: 'k', value: '"\ud800"' }, 'invalid_request', /well-formed/],
    ['storage.set', { key: 'k', value: twoMiB }, 'payload_too_large', /^value is 2097152 bytes; the limit is 1 MiB \(1048576 bytes\)$/],
    ['storage.set', { key: 'k', value: '1', ttl: 5 }, 'invalid_request', /ttl/],
    ['storage.delete', { key: 'x'.repeat(513) }, 'invalid_request', /512/],
    ['storage.delete', { key: ['k'] }, 'invalid_request'],
    ['storage.list', { limit: 0 }, 'invalid_request', /1\.\.1000/],
    ['storage.list', { limit: 1001 }, 'invalid_request', /1\.\.1000/],
    ['storage.list', { limit: 2.5 }, 'invalid_request'],
    ['storage.list', { limit: '5' }, 'invalid_request'],
    ['storage.list', { prefix: 1 }, 'invalid_request'],
    ['storage.list', { prefix: 'x'.repeat(513) }, 'invalid_request', /512/],
    ['storage.list', { cursor: '!!' }, 'invalid_request', /cursor/],
    ['storage.list', { cursor: 5 }, 'invalid_request'],
    ['storage.list', { gte: '' }, 'invalid_request', /gte/],
    ['storage.list', [], 'invalid_request'],
    ['storage.batch', {}, 'invalid_request'],
    ['storage.batch', { ops: 'x' }, 'invalid_request'],
    ['storage.batch', { ops: [null] }, 'invalid_request'],
    ['storage.batch', { ops: [{ op: 'put', key: 'a', value: '1' }] }, 'invalid_request'],
    ['storage.batch', { ops: [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: 'nope' }] }, 'invalid_request', /ops\.1/],
    ['storage.batch', { ops: [{ op: 'set', key: 'a', value: '1' }, { op: 'delete', key: '' }] }, 'invalid_request', /512/],
    ['storage.batch', { ops: [{ op: 'set', key: 'a', value: '1', extra: true }] }, 'invalid_request'],
    ['storage.batch', { ops: [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: twoMiB }] }, 'payload_too_large', /1 MiB/],
    ['storage.batch', { ops: Array.from({ length: 1001 }, (_, i) => ({ op: 'delete', key: `k${i}` })) }, 'invalid_request', /1000/],
    ['storage.batch', { ops: Array.from({ length: 9 }, (_, i) => ({ op: 'set', key: `k${i}`, value: JSON.stringify('x'.repeat(MiB - 16)) })) }, 'payload_too_large', /8 MiB/],
    ['storage.drop', {}, 'invalid_request'],
  ];

  // Titles show a short form of the payload: some are megabytes long.
  const titled = cases.map(([op, payload, code, message]) => [op, (JSON.stringify(payload) ?? 'undefined').slice(0, 70), payload, code, message] as const);

  it.each(titled)('should refuse %s %s with a coded error', async (op, _title, payload, code, message) => {
    const err = await binding.handle(op, payload, undefined, scope).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe(code);
    if (message) expect((err as IsohostError).message).toMatch(message);
    expect((err as IsohostError).message).not.toContain('bind'); // the namespace
    expect(await listAll(tenant.app('notes'))).toEqual([]);
    expect(tenant.usageBytes()).toBe(0);
  });
});
