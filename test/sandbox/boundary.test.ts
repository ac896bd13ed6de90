/**
 * THREATS A1–A4: nothing reachable from the guest's globalThis or fc holds the tenant
 * id, namespace, data path or an isolated-vm object; process/require/import()/Buffer
 * are unreachable, also through constructor chains and Error.prepareStackTrace; a
 * poisoned realm cannot subvert fc.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';

// The isolate's global (test bodies are stringified into bundles; see helpers/bundle.ts).
declare const fc: any;
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'secret-tenant-x', namespace: 'secret-ns-x', isolation: 'database', limits: { cpu_ms: 2000 } }]);
});
afterAll(() => p.dispose());

const walker = bundleOf({
  async walk() {
    await fc.storage.set('probe', 1);
    const seen = new Set<unknown>();
    const strings: string[] = [];
    const ctorNames = new Set<string>();
    const stack: unknown[] = [globalThis, fc];
    try {
      await fc.storage.get('');
    } catch (e) {
      stack.push(e);
    }
    stack.push(Promise.resolve(1), fc.storage.get('probe'));
    while (stack.length > 0 && seen.size < 200_000) {
      const v = stack.pop();
      if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) continue;
      seen.add(v);
      const ctor = Object.getOwnPropertyDescriptor(v, 'constructor')?.value;
      if (typeof ctor === 'function' && typeof ctor.name === 'string') ctorNames.add(ctor.name);
      for (const key of Reflect.ownKeys(v as object)) {
        if (typeof key === 'string') strings.push(key);
        const d = Object.getOwnPropertyDescriptor(v, key)!;
        for (const x of [d.value, d.get, d.set]) {
          if (typeof x === 'string') strings.push(x);
          else stack.push(x);
        }
      }
      stack.push(Object.getPrototypeOf(v));
    }
    return { strings, ctorNames: [...ctorNames], count: seen.size };
  },
  escapes() {
    const results: Record<string, unknown> = {};
    const tryIt = (name: string, f: () => unknown) => {
      try {
        results[name] = f();
      } catch (e) {
        results[name] = 'threw: ' + String(e).slice(0, 80);
      }
    };
    tryIt('process', () => typeof (globalThis as any).process);
    tryIt('require', () => typeof (globalThis as any).require);
    tryIt('Buffer', () => typeof (globalThis as any).Buffer);
    tryIt('ctorChain', () => fc.storage.get.constructor('return typeof process')());
    tryIt('ctorChainGlobal', () => fc.log.info.constructor('return Object.keys(globalThis).join()')());
    tryIt('isohostGlobal', () => typeof (globalThis as any).__isohost);
    return results;
  },
  async importDynamic() {
    try {
      await (0, eval)('import("node:fs")');
      return 'imported';
    } catch (e) {
      return 'rejected';
    }
  },
  async prepareStack() {
    const seen: string[] = [];
    (Error as any).prepareStackTrace = (_e: unknown, frames: any[]) => {
      for (const f of frames) {
        const fn = f.getFunction?.();
        seen.push(typeof fn === 'function' ? 'fn' : String(fn));
        seen.push(String(f.getFileName?.()));
      }
      return 'x';
    };
    try {
      await fc.storage.set('', 1);
    } catch (e) {
      void (e as Error).stack;
    }
    void new Error('probe').stack;
    return seen;
  },
  async poisoned() {
    const realParse = JSON.parse;
    JSON.parse = () => ({ value: 'forged' });
    JSON.stringify = () => '"forged"';
    (Array.prototype as any).push = () => {
      throw new Error('poisoned push');
    };
    Promise.prototype.then = function () {
      throw new Error('poisoned then');
    } as any;
    Object.defineProperty(Object.prototype, 'key', { get: () => 'forged-key', configurable: true });
    Function.prototype.apply = () => 'forged';
    await fc.storage.set('real', { ok: true });
    const v = await fc.storage.get('real');
    return realParse('[' + String(v && (v as any).ok) + ']');
  },
});

describe('the isolate boundary', () => {
  it('should expose no tenant id, namespace, data path or isolated-vm object anywhere reachable', async () => {
    const { strings, ctorNames, count } = await callOnce(p, 'secret-tenant-x', 'walker', walker, 'walk');
    expect(count).toBeGreaterThan(500);
    const text = strings.join('\n');
    for (const secret of ['secret-tenant-x', 'secret-ns-x', p.dataDir, 'isolated-vm', 'isohost:prelude']) {
      expect(text).not.toContain(secret);
    }
    // isolated-vm's classes (WebAssembly.Module is a V8 built-in and may appear).
    for (const name of ['Reference', 'ExternalCopy', 'Callback', 'Isolate', 'Context', 'Script', 'NativeModule', 'Buffer']) {
      expect(ctorNames).not.toContain(name);
    }
  });

  it('should keep process, require, Buffer and import() unreachable, also through constructor chains', async () => {
    const r = await callOnce(p, 'secret-tenant-x', 'walker', walker, 'escapes');
    expect(r).toMatchObject({ process: 'undefined', require: 'undefined', Buffer: 'undefined', ctorChain: 'undefined', isohostGlobal: 'undefined' });
    expect(String(r.ctorChainGlobal)).not.toMatch(/process|require|__isohost/);
    expect(await callOnce(p, 'secret-tenant-x', 'walker', walker, 'importDynamic')).toBe('rejected');
  });

  it('should give Error.prepareStackTrace no host functions or host file names', async () => {
    const seen: string[] = await callOnce(p, 'secret-tenant-x', 'walker', walker, 'prepareStack');
    expect(seen.join(' ')).not.toMatch(/node_modules|\/src\/|\.ts|isolated-vm/);
  });

  it('should keep fc working for the right tenant after the guest poisons its built-ins', async () => {
    expect(await callOnce(p, 'secret-tenant-x', 'walker', walker, 'poisoned')).toEqual([true]);
  });
});
