/**
 * Saved intrinsics everywhere in the prelude (issue 11, THREATS A2): a mini-app that
 * replaces every method (and accessor, and Symbol.iterator) of the built-in prototypes
 * before a call still gets its calls run and their results — and its errors — delivered,
 * on one instance, one call at a time and in a queued group (the batch path). Before the
 * fix, a poisoned `String.prototype.slice` made the error path reject and the instance was
 * disposed as `internal`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { appBundle, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;


const app = bundleOf({
  poison() {
    const protos = [
      Object.prototype, Function.prototype, Array.prototype, String.prototype, Number.prototype, Boolean.prototype,
      Symbol.prototype, BigInt.prototype, Date.prototype, RegExp.prototype, Error.prototype, TypeError.prototype,
      Map.prototype, Set.prototype, WeakMap.prototype, WeakSet.prototype, Promise.prototype, ArrayBuffer.prototype,
      Object.getPrototypeOf(Uint8Array.prototype), Uint8Array.prototype, DataView.prototype,
      Object.getPrototypeOf([][Symbol.iterator]()), Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())),
      Object.getPrototypeOf(new Map()[Symbol.iterator]()), Object.getPrototypeOf(''[Symbol.iterator]()),
      Object.getPrototypeOf((async function* () {})()),
    ];
    const statics: [any, string[]][] = [
      [Object, ['keys', 'entries', 'values', 'assign', 'freeze', 'defineProperty', 'getPrototypeOf', 'create', 'hasOwn', 'getOwnPropertyDescriptor', 'getOwnPropertyNames']],
      [Array, ['isArray', 'from', 'of']],
      [JSON, ['stringify', 'parse']],
      [Promise, ['resolve', 'reject', 'all', 'race']],
      [Reflect, ['apply', 'ownKeys', 'get', 'set', 'defineProperty', 'getPrototypeOf']],
      [String, ['fromCharCode']],
      [Number, ['isFinite', 'isInteger']],
      [Math, ['min', 'max', 'floor']],
    ];
    // Index loops and saved helpers only: the poisoning itself must not trip over what it poisoned.
    const ownKeys = Reflect.ownKeys;
    const describeKey = Object.getOwnPropertyDescriptor;
    const define = Object.defineProperty;
    let poisoned = 0;
    const trap = (name: string) =>
      function poisonedMethod() {
        throw new Error(`poisoned ${name} was called`);
      };
    for (let i = 0; i < protos.length; i++) {
      const proto = protos[i];
      const keys = ownKeys(proto);
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!;
        if (key === 'constructor' || key === '__proto__') continue;
        const d = describeKey(proto, key)!;
        if (!d.configurable) continue;
        const name = String(key);
        if (typeof d.value === 'function') define(proto, key, { value: trap(name), writable: true, configurable: true });
        else if (d.get) define(proto, key, { get: trap(`get ${name}`), set: trap(`set ${name}`), configurable: true });
        else continue;
        poisoned++;
      }
    }
    // The setters a mini-app can put on Array.prototype indices ([[Set]] of a new element).
    for (let i = 0; i < 8; i++) define(Array.prototype, i, { set: trap(`set [${i}]`), get: trap(`get [${i}]`), configurable: true });
    for (let i = 0; i < statics.length; i++) {
      const obj = statics[i]![0];
      const names = statics[i]![1];
      for (let n = 0; n < names.length; n++) {
        define(obj, names[n]!, { value: trap(names[n]!), writable: true, configurable: true });
        poisoned++;
      }
    }
    return poisoned;
  },
  echo(args: unknown) {
    return { args, list: [1, 'two', { three: 3 }], text: 'ünï ✓', when: null };
  },
  fail() {
    let long = 'expected failure: ';
    for (let i = 0; i < 5000; i++) long += 'x'; // no String.prototype.repeat: it is poisoned
    throw new TypeError(long);
  },
  async usesPlatform() {
    await fc.storage.set('k', { a: [1, 'b'] });
    await fc.storage.batch([{ op: 'set', key: 'j', value: 2 }, { op: 'delete', key: 'gone' }]);
    fc.log.info('after poisoning', { n: 1 });
    console.log('console too', 2);
    return { k: await fc.storage.get('k'), list: (await fc.storage.list({ prefix: '' })).entries.length };
  },
  async waits(ms: number) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'poison', limits: { cpu_ms: 2000, wall_ms: 5000 } }]);
});
afterAll(() => p.dispose());

describe('a mini-app that poisons every built-in prototype method', () => {
  it('should still have its calls run and their results and errors delivered', async () => {
    const tenant = p.tenants.get('poison');
    const { info } = await p.host.launch(tenant, appBundle('poisoner', app), null);
    const call = async (method: string, args: unknown = null) => JSON.parse(await p.host.call(tenant, null, info.id, method, JSON.stringify(args)));
    expect(await call('poison')).toBeGreaterThan(200);

    expect(await call('echo', { a: [1, { b: 'c' }] })).toEqual({ args: { a: [1, { b: 'c' }] }, list: [1, 'two', { three: 3 }], text: 'ünï ✓', when: null });

    // The error path (message truncation, line lookup, envelope) runs on the poisoned realm too.
    const err = await call('fail').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('miniapp_error');
    expect((err as IsohostError).message).toContain('expected failure: xxx');

    // The platform ops a call makes (storage, log) go through saved built-ins too.
    expect(await call('usesPlatform')).toEqual({ k: { a: [1, 'b'] }, list: 2 });

    // Calls queued on a busy instance go in together (the batch path), timers included.
    const queued = await Promise.all([call('waits', 20), call('echo', 1), call('echo', 2), call('waits', 0)]);
    expect(queued).toEqual([20, expect.objectContaining({ args: 1 }), expect.objectContaining({ args: 2 }), 0]);
    expect(p.host.isLive(info.id)).toBe(true);
    p.host.dispose(tenant, null, info.id);
  });
});


/**
 * `JSON.stringify` looks up `toJSON` on every object it is given, up the prototype chain:
 * a throwing `toJSON` a mini-app put on Object.prototype or Array.prototype reached the
 * prelude's own envelopes (an error's `{code, message}`, the exports' name list), so a
 * call that failed or returned an object ended the instance as `internal`.
 */
const toJsonApp = bundleOf({
  poisonToJSON() {
    const trap = () => {
      throw new Error('poisoned toJSON was called');
    };
    Object.defineProperty(Object.prototype, 'toJSON', { value: trap, writable: true, configurable: true });
    Object.defineProperty(Array.prototype, 'toJSON', { value: trap, writable: true, configurable: true });
    return 1;
  },
  count() {
    return 42;
  },
  text() {
    return 'plain';
  },
  fail() {
    throw new TypeError('expected failure');
  },
  echo() {
    return { a: 1 };
  },
});

describe('a mini-app that puts a throwing toJSON on the prototypes', () => {
  it('should get coded mini-app errors, and keep its instance, when the prelude serialises its envelopes', async () => {
    const tenant = p.tenants.get('poison');
    const { info } = await p.host.launch(tenant, appBundle('to-json', toJsonApp), null);
    const call = (method: string) => p.host.call(tenant, null, info.id, method, 'null');
    expect(await call('poisonToJSON')).toBe('1');
    expect(await call('count')).toBe('42');
    expect(await call('text')).toBe('"plain"');
    await expect(call('fail')).rejects.toMatchObject({ code: 'miniapp_error', message: expect.stringContaining('expected failure') });
    // Its own object result goes through its own toJSON, which throws: its failure, coded.
    await expect(call('echo')).rejects.toMatchObject({ code: 'miniapp_error' });
    expect(p.host.isLive(info.id)).toBe(true);
    p.host.dispose(tenant, null, info.id);
  });

  it('should launch a bundle whose top-level code poisons toJSON before its exports are read', async () => {
    const tenant = p.tenants.get('poison');
    const source = `Object.defineProperty(Object.prototype, 'toJSON', { value() { throw new Error('poisoned'); }, configurable: true });
Object.defineProperty(Array.prototype, 'toJSON', { value() { throw new Error('poisoned'); }, configurable: true });
export function ok() { return 7; }
export function fail() { throw new Error('boom'); }`;
    const { info } = await p.host.launch(tenant, appBundle('to-json-top', source), null);
    expect(info.methods).toEqual(['fail', 'ok']);
    expect(await p.host.call(tenant, null, info.id, 'ok', 'null')).toBe('7');
    await expect(p.host.call(tenant, null, info.id, 'fail', 'null')).rejects.toMatchObject({ code: 'miniapp_error', message: expect.stringContaining('boom') });
    p.host.dispose(tenant, null, info.id);
  });
});
