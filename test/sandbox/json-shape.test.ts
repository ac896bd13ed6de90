/**
 * Values keep their shape (issue 11): a value JSON cannot carry unchanged — a function, a
 * symbol, undefined in an array, a non-finite number, a Map, Set, typed array or class
 * instance — is refused with a TypeError naming the path inside it, by fc.storage.set and
 * batch, by a method's return value and by Response.json; before the fix they were stored
 * as `{}` / `null`. Dates (toJSON) and ordinary JSON round-trip. The check is the replacer of
 * the one JSON.stringify (json-value.ts), so THREATS A4's read-once rule still holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf({
  async store(which: string) {
    class Point {
      x = 1;
    }
    const cyclic: any = { list: [] };
    cyclic.list.push(cyclic);
    const values: Record<string, unknown> = {
      fn: { f: () => 1 },
      map: new Map([['a', 1]]),
      set: { s: new Set([1]) },
      nan: NaN,
      infinity: { n: [1, -Infinity] },
      holeyUndefined: [1, undefined, 3],
      symbol: { a: { b: [{ 'c d': Symbol('x') }] } },
      typed: { bytes: new Uint8Array(2) },
      instance: { p: new Point() },
      boxed: { s: new String('x') },
      bigint: { n: 1n },
      cyclic,
    };
    try {
      await fc.storage.set('k', values[which]);
      return { ok: await fc.storage.get('k') };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: String(e.message) };
    }
  },
  async batch() {
    try {
      await fc.storage.batch([{ op: 'set', key: 'a', value: 1 }, { op: 'set', key: 'b', value: { deep: { f() {} } } }]);
      return { ok: true };
    } catch (e: any) {
      return { name: e.name, code: e.code, message: String(e.message), a: await fc.storage.get('a') };
    }
  },
  async roundTrip() {
    const shared = { n: 1 };
    const value = { s: 'é', n: -0.5, b: true, z: null, list: [1, 'two', [null]], when: new Date(0), gone: undefined, a: shared, b2: shared, bare: Object.create(null) };
    await fc.storage.set('rt', value);
    return fc.storage.get('rt');
  },
  returnsFunction: () => ({ ok: 1, f: () => 2 }),
  returnsMap: () => [new Map()],
  returnsNaN: () => ({ n: NaN }),
  returnsUndefined: () => undefined,
  responseJson() {
    try {
      (globalThis as any).Response.json({ n: [Infinity] });
      return { ok: true };
    } catch (e: any) {
      return { name: e.name, message: String(e.message) };
    }
  },
  async objectBody() {
    const out: Record<string, unknown> = {};
    for (const [name, make] of [
      ['response', () => new (globalThis as any).Response({ a: 1 })],
      ['request', () => new (globalThis as any).Request('http://x.test/', { method: 'POST', body: [1, 2] })],
    ] as const) {
      try {
        make();
        out[name] = 'accepted';
      } catch (e: any) {
        out[name] = { name: e.name, message: String(e.message) };
      }
    }
    out.text = await new (globalThis as any).Response(JSON.stringify({ a: 1 })).text();
    return out;
  },
  async responseJsonOk() {
    return (globalThis as any).Response.json({ a: [1, 2], d: new Date(0) }).json();
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'shape', limits: { cpu_ms: 2000 } }]);
});
afterAll(() => p.dispose());

const refused: [string, RegExp][] = [
  ['fn', /^value\.f: functions cannot be stored/],
  ['map', /^value: Map objects cannot be stored/],
  ['set', /^value\.s: Set objects cannot be stored/],
  ['nan', /^value: non-finite numbers \(NaN\) cannot be stored/],
  ['infinity', /^value\.n\[1\]: non-finite numbers \(-Infinity\)/],
  ['holeyUndefined', /^value\[1\]: undefined values cannot be stored/],
  ['symbol', /^value\.a\.b\[0\]\["c d"\]: symbols cannot be stored/],
  ['typed', /^value\.bytes: Uint8Array objects cannot be stored/],
  ['instance', /^value\.p: Point objects cannot be stored/],
  ['boxed', /^value\.s: String objects cannot be stored/],
  ['bigint', /^value\.n: bigints cannot be stored/],
  ['cyclic', /^value is not JSON-serializable: .*circular/],
];

describe('values keep their shape', () => {
  it.each(refused)('should refuse fc.storage.set of %s with a TypeError naming the path', async (which, message) => {
    const r = await callOnce(p, 'shape', 'shape-app', app, 'store', which);
    expect(r).toMatchObject({ name: 'TypeError', code: 'invalid_request' });
    expect(r.message).toMatch(message);
  });

  it('should refuse a batch whose value has a function, naming the op, and write nothing', async () => {
    const r = await callOnce(p, 'shape', 'shape-app', app, 'batch');
    expect(r).toMatchObject({ name: 'TypeError', code: 'invalid_request', a: null });
    expect(r.message).toMatch(/^batch\[1\]\.value\.deep\.f: functions cannot be stored/);
  });

  it('should store JSON values, Dates and shared (acyclic) references unchanged', async () => {
    expect(await callOnce(p, 'shape', 'shape-app', app, 'roundTrip')).toEqual({
      s: 'é', n: -0.5, b: true, z: null, list: [1, 'two', [null]], when: '1970-01-01T00:00:00.000Z', a: { n: 1 }, b2: { n: 1 }, bare: {},
    });
  });

  it.each([
    ['returnsFunction', /result\.f: functions cannot be returned/],
    ['returnsMap', /result\[0\]: Map objects cannot be returned/],
    ['returnsNaN', /result\.n: non-finite numbers \(NaN\) cannot be returned/],
  ])('should fail %s as miniapp_error naming the path', async (method, message) => {
    const err = await callOnce(p, 'shape', 'shape-app', app, method).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('miniapp_error');
    expect((err as IsohostError).message).toMatch(message);
  });

  it('should still answer null for a method that returns undefined', async () => {
    expect(await callOnce(p, 'shape', 'shape-app', app, 'returnsUndefined')).toBeNull();
  });

  it('should refuse a plain object or array as a fetch body instead of sending "[object Object]"', async () => {
    const r = await callOnce(p, 'shape', 'shape-app', app, 'objectBody');
    for (const k of ['response', 'request']) expect(r[k]).toEqual({ name: 'TypeError', message: expect.stringMatching(/^body: a plain object or array is not a body/) });
    expect(r.text).toBe('{"a":1}');
  });

  it('should refuse Response.json data that JSON would reshape, and keep what it can carry', async () => {
    const r = await callOnce(p, 'shape', 'shape-app', app, 'responseJson');
    expect(r.name).toBe('TypeError');
    expect(r.message).toMatch(/^data\.n\[0\]: non-finite numbers \(Infinity\) cannot be sent/);
    expect(await callOnce(p, 'shape', 'shape-app', app, 'responseJsonOk')).toEqual({ a: [1, 2], d: '1970-01-01T00:00:00.000Z' });
  });
});
