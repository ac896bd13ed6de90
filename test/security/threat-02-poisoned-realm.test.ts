/**
 * THREATS A2 and A3, beyond test/sandbox/boundary.test.ts (which poisons JSON, push,
 * Promise.prototype.then, Object.prototype getters and Function.prototype.apply).
 *
 * Regression (A2): a setter on `Array.prototype[0]` used to receive every op of
 * fc.storage.batch (the prelude built its op list with `out[i] = op`, i.e. [[Set]]),
 * so the batch reached the host with holes; the prelude now defines the entries.
 *
 * Known and documented (docs/SECURITY.md): a redefined `Promise[Symbol.species]` runs
 * wherever `then` runs — in the prelude's saved `then` and in isolated-vm's own
 * collection of the method's promise — so a mini-app that poisons it breaks its own
 * async calls; the call ends with a code and nothing is written.
 *
 * Everything here runs inside the one isolate that belongs to the attacking tenant, so
 * the worst a poisoned realm can do is break its own calls; what this suite pins is that
 * every write still lands in that tenant's own keyspace, another tenant's stays empty,
 * and no constructor chain reaches `process` (A3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf({
  async poisoned(which: string) {
    let calls = 0;
    const hit = () => {
      calls++;
    };
    const accessor = (get: () => unknown) => ({ __proto__: null, get, set: hit, configurable: true }) as PropertyDescriptor;
    const poisons: Record<string, () => void> = {
      arrayIndexSetters: () => {
        for (let i = 0; i < 4; i++) Object.defineProperty(Array.prototype, i, accessor(() => undefined));
      },
      objectPrototypeGetters: () => {
        for (const n of ['value', 'ops', 'key', 'op', 'code', 'message', 'json', 'bytes', 'prefix', 'limit', 'cursor', 'entries', 'then', 'get', 'set']) {
          Object.defineProperty(Object.prototype, n, accessor(() => (hit(), undefined)));
        }
      },
      promiseSpecies: () => {
        Object.defineProperty(Promise, Symbol.species, accessor(() => (hit(), function Evil() { throw new Error('species'); })));
      },
      arraySpecies: () => {
        Object.defineProperty(Array, Symbol.species, accessor(() => (hit(), function Evil() { throw new Error('species'); })));
      },
      iterators: () => {
        (Object.prototype as any)[Symbol.iterator] = function* () { hit(); yield 'forged'; };
        (Array.prototype as any)[Symbol.iterator] = function* () { hit(); yield 'forged'; };
      },
      functionPrototype: () => {
        (Function.prototype as any).call = () => (hit(), 'forged');
        (Function.prototype as any).bind = () => () => (hit(), 'forged');
      },
      builtinMethods: () => {
        (Array.prototype as any).map = () => (hit(), []);
        (Array.prototype as any).join = () => (hit(), 'forged');
        (String.prototype as any).slice = () => (hit(), 'forged');
        (RegExp.prototype as any).exec = () => (hit(), null);
        (Object as any).keys = () => (hit(), []);
      },
    };
    poisons[which]!();
    await fc.storage.set('set-key', { v: 1 });
    await fc.storage.batch([
      { op: 'set', key: 'batch-a', value: 'a' },
      { op: 'set', key: 'batch-b', value: 'b' },
      { op: 'delete', key: 'set-key' },
    ]);
    const listed = await fc.storage.list({ prefix: 'batch-', limit: 10 });
    let badKey = 'accepted';
    try {
      await fc.storage.get('');
    } catch (e: any) {
      badKey = Object.getOwnPropertyDescriptor(e, 'code')?.value;
    }
    // Only primitives leave: the result is stringified with the poisons still in place.
    return `${listed.entries.length}|${String(await fc.storage.get('batch-a'))}|${badKey}|${calls}`;
  },
  escapes() {
    const found: string[] = [];
    const probe = (name: string, make: () => any) => {
      try {
        const v = make();
        const F = v?.constructor?.constructor;
        if (typeof F !== 'function') return;
        if (F('return typeof process')() !== 'undefined' || F('return typeof require')() !== 'undefined') found.push(name);
        if (F('return typeof globalThis.__isohost')() !== 'undefined') found.push(name + ': __isohost');
      } catch {
        // a constructor that throws is not an escape
      }
    };
    probe('caught error', () => {
      try {
        JSON.parse('{');
      } catch (e) {
        return e;
      }
    });
    probe('storage promise', () => fc.storage.get('k'));
    probe('rejected storage promise', () => fc.storage.get('').catch((e: unknown) => e));
    probe('fetch promise', () => fc.fetch('http://x.test/').catch((e: unknown) => e));
    probe('fc.log', () => fc.log.info);
    probe('fc.session', () => fc.session);
    probe('Response', () => new Response('x'));
    probe('URL', () => new URL('http://x.test/'));
    probe('TextEncoder', () => new TextEncoder());
    probe('crypto', () => crypto.getRandomValues);
    probe('setTimeout', () => setTimeout);
    probe('structuredClone', () => structuredClone);
    return found;
  },
  async constructorsOfCaught() {
    const seen: string[] = [];
    for (const make of [() => fc.storage.get(''), () => fc.fetch('http://x.test/'), () => fc.storage.set('k', 10n)]) {
      try {
        await make();
      } catch (e: any) {
        seen.push(e.constructor.constructor('return typeof process')());
        seen.push(e.constructor.constructor('return typeof require')());
      }
    }
    return seen;
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([
    { id: 'poisoner', namespace: 'ns-poisoner', limits: { cpu_ms: 2000 } },
    { id: 'bystander', namespace: 'ns-bystander' },
  ]);
});
afterAll(() => p.dispose());

async function keys(tenant: string): Promise<string[]> {
  const page = await p.tenants.get(tenant).store.app('poison').list({ prefix: '', limit: 100 });
  return page.entries.map((e) => `${e.key}=${e.value}`);
}

const POISONS = ['arrayIndexSetters', 'objectPrototypeGetters', 'promiseSpecies', 'arraySpecies', 'iterators', 'functionPrototype', 'builtinMethods'];

describe('fc under a poisoned realm (A2)', () => {
  it.each(POISONS)('should keep every fc.storage op working for its own tenant after %s', async (which) => {
    await p.tenants.get('poisoner').store.app('poison').batch(['set-key', 'batch-a', 'batch-b'].map((key) => ({ op: 'delete' as const, key })));
    if (which === 'promiseSpecies') {
      // isolated-vm collects the method's pending promise with `then`/`catch`, which look
      // up the poisoned species: the mini-app breaks its own call (documented in
      // docs/SECURITY.md). It ends with a code. Whether the op its code sent before that
      // point was served depends on timing (the prelude sends it through saved intrinsics);
      // either way only its own tenant's keyspace holds it, with the value it gave.
      const err = await callOnce(p, 'poisoner', 'poison', app, 'poisoned', which).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(IsohostError);
      expect(['internal', 'miniapp_error']).toContain((err as IsohostError).code);
      for (const k of await keys('poisoner')) expect(['set-key={"v":1}', 'batch-a="a"', 'batch-b="b"']).toContain(k);
    } else {
      const [listed, a, badKey, calls] = String(await callOnce(p, 'poisoner', 'poison', app, 'poisoned', which)).split('|');
      expect({ listed, a, badKey }).toEqual({ listed: '2', a: 'a', badKey: 'invalid_request' });
      // The prelude writes its op list without [[Set]]: the setters saw nothing.
      if (which === 'arrayIndexSetters') expect(calls).toBe('0');
      expect(await keys('poisoner')).toEqual(['batch-a="a"', 'batch-b="b"']);
    }
    expect(await keys('bystander')).toEqual([]);
  });
});

describe('constructor chains (A3)', () => {
  it('should reach no process or require from any object the platform hands out', async () => {
    expect(await callOnce(p, 'poisoner', 'escape', app, 'escapes')).toEqual([]);
  });

  it('should reach no process or require from the constructors of caught platform errors', async () => {
    expect(await callOnce(p, 'poisoner', 'escape', app, 'constructorsOfCaught')).toEqual(Array(6).fill('undefined'));
  });
});
