/**
 * THREATS A4: proxies, getters, `toJSON` and `Symbol.toPrimitive` passed to fc.* or
 * returned from a method. Every such value is turned into JSON text inside the isolate
 * (under the call's deadline) before anything crosses, so the host only ever sees a
 * string it validates: a trap that lies twice is read once, a trap that loops forever
 * ends the call with `timeout` — and the host's own thread keeps running throughout
 * (a concurrent host timer keeps firing; no gap as long as the call).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';
import { whileMeasuringHost } from '../helpers/security-fixtures.ts';

declare const fc: any;

const app = bundleOf({
  async proxyValue() {
    let reads = 0;
    const v = new Proxy({}, {
      ownKeys: () => ['a'],
      getOwnPropertyDescriptor: () => ({ value: 0, enumerable: true, configurable: true }),
      get: (_t, prop) => (prop === 'a' ? ++reads : undefined),
    });
    await fc.storage.set('proxy', v);
    return { reads, stored: await fc.storage.get('proxy') };
  },
  async shiftingToJSON() {
    let n = 0;
    await fc.storage.set('tojson', { toJSON: () => ({ n: ++n }) });
    return { n, stored: await fc.storage.get('tojson') };
  },
  async toPrimitiveKey() {
    try {
      await fc.storage.set({ [Symbol.toPrimitive]: () => 'k', toString: () => 'k' }, 1);
      return 'accepted';
    } catch (e: any) {
      return { name: e.name, code: e.code };
    }
  },
  async lyingBatch() {
    // length says 1 when checked, a million afterwards
    let lengthReads = 0;
    const ops = new Proxy([{ op: 'set', key: 'from-batch', value: 1 }], {
      get(target, prop, receiver) {
        if (prop === 'length') return ++lengthReads === 1 ? 1 : 1_000_000;
        return Reflect.get(target, prop, receiver);
      },
    });
    await fc.storage.batch(ops);
    return { stored: await fc.storage.get('from-batch'), page: (await fc.storage.list({ prefix: 'from-' })).entries.length };
  },
  async shiftingListPrefix() {
    let reads = 0;
    const options = { get prefix() { return ++reads === 1 ? 'a' : { toString: () => 'b' }; }, limit: 10 };
    try {
      return { entries: (await fc.storage.list(options)).entries.length, reads };
    } catch (e: any) {
      return { name: e.name, code: e.code, reads };
    }
  },
  async returnProxy() {
    return new Proxy({}, { ownKeys: () => ['x'], getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }), get: () => 'from-trap' });
  },
  returnToPrimitive() {
    return { [Symbol.toPrimitive]: () => { throw new Error('never called'); }, plain: 1 };
  },
  returnSymbolsAndFunctions() {
    return { f() {}, s: Symbol('s'), u: undefined, n: NaN, big: [1, () => 1] };
  },
  // --- each of these loops forever inside the isolate ---
  loopingGetterInValue() {
    return fc.storage.set('k', { get x() { for (;;); } });
  },
  loopingToJSONInValue() {
    return fc.storage.set('k', { toJSON() { for (;;); } });
  },
  loopingOwnKeysInValue() {
    return fc.storage.set('k', new Proxy({}, { ownKeys() { for (;;); } }));
  },
  loopingBatchOp() {
    return fc.storage.batch([{ op: 'set', get key(): string { for (;;); } }]);
  },
  loopingLogFields() {
    fc.log.info('x', { get f() { for (;;); } });
    return 'logged';
  },
  loopingFetchInit() {
    return fetch('http://x.test/', { get method(): string { for (;;); } });
  },
  loopingGetterReturned() {
    return { get x() { for (;;); } };
  },
  loopingToJSONReturned() {
    return { toJSON() { for (;;); } };
  },
  loopingProxyReturned() {
    return new Proxy({}, { ownKeys() { for (;;); } });
  },
  loopingThenableReturned() {
    return { then() { for (;;); } };
  },
  loopingThrownMessage() {
    throw { get message() { for (;;); }, code: 'x' };
  },
  loopingThrownCode() {
    throw { message: 'm', get code() { for (;;); } };
  },
  async ok() {
    return 'ok';
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'hostile', namespace: 'ns-hostile', limits: { cpu_ms: 300, wall_ms: 3000, breaches_per_min: 100_000 } }]);
});
afterAll(() => p.dispose());

const run = (method: string) => callOnce(p, 'hostile', 'a4', app, method);
const stored = (key: string) => p.tenants.get('hostile').store.app('a4').get(key);

describe('hostile values passed to fc.*', () => {
  it('should serialise a Proxy once, in the isolate, and store exactly that JSON', async () => {
    expect(await run('proxyValue')).toEqual({ reads: 1, stored: { a: 1 } });
    expect(await stored('proxy')).toBe('{"a":1}');
  });

  it('should call toJSON once and store its result', async () => {
    expect(await run('shiftingToJSON')).toEqual({ n: 1, stored: { n: 1 } });
    expect(await stored('tojson')).toBe('{"n":1}');
  });

  it('should refuse an object key with Symbol.toPrimitive instead of coercing it', async () => {
    expect(await run('toPrimitiveKey')).toEqual({ name: 'TypeError', code: 'invalid_request' });
  });

  it('should read a batch array length once: a Proxy cannot grow it after the check', async () => {
    expect(await run('lyingBatch')).toEqual({ stored: 1, page: 1 });
  });

  it('should send list options as read, and let the host refuse a non-string the second read produced', async () => {
    const r = await run('shiftingListPrefix');
    // whatever the getter returns, the host validated one JSON payload: a list, or a coded refusal
    expect(r.entries === 0 || r.code === 'invalid_request').toBe(true);
  });
});

describe('hostile values returned from a method', () => {
  it('should return what a Proxy traps say, as JSON', async () => {
    expect(await run('returnProxy')).toEqual({ x: 'from-trap' });
  });

  it('should never call Symbol.toPrimitive, and refuse what JSON cannot hold (issue 11) instead of dropping it', async () => {
    expect(await run('returnToPrimitive')).toEqual({ plain: 1 });
    const err = await run('returnSymbolsAndFunctions').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('miniapp_error');
    expect((err as IsohostError).message).toMatch(/result\.f: functions cannot be returned/);
  });
});

const LOOPS = [
  'loopingGetterInValue', 'loopingToJSONInValue', 'loopingOwnKeysInValue', 'loopingBatchOp', 'loopingLogFields',
  'loopingFetchInit', 'loopingGetterReturned', 'loopingToJSONReturned', 'loopingProxyReturned',
  'loopingThenableReturned', 'loopingThrownMessage', 'loopingThrownCode',
];

describe('a trap or getter that never returns', () => {
  it.each(LOOPS)('should end %s with timeout while the host thread keeps running', async (method) => {
    const m = await whileMeasuringHost(() => run(method));
    expect(m.error).toBeInstanceOf(IsohostError);
    expect((m.error as IsohostError).code).toBe('timeout');
    // The loop ran on the isolate's thread: the host's timer fired all along.
    expect(m.ticks).toBeGreaterThanOrEqual(10);
    expect(m.maxGapMs).toBeLessThan(m.elapsedMs / 2);
    expect(await run('ok')).toBe('ok');
  });
});
