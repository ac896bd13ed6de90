/**
 * The web globals bundled (esbuild, IIFE, minified: the form that goes into the
 * snapshot) and run in a fresh node:vm realm, which like a bare isolate has only
 * ECMAScript built-ins: no window, global, self, process or require. There the guest
 * poisons its built-ins (THREATS A2) and the classes must keep working.
 */
import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { handleSyncOp } from '../../src/sandbox/host-utilities.ts';

const bundle = buildSync({
  entryPoints: [fileURLToPath(new URL('./realm-entry.ts', import.meta.url))],
  bundle: true, write: false, format: 'iife', globalName: '__prelude', platform: 'neutral', target: 'es2024', minify: true,
}).outputFiles[0]!.text;

/** A realm with the prelude installed; `fetch` answers every request with `reply`. */
function makeRealm(reply: (payload: any) => { json: unknown; body: string }) {
  const ctx = vm.createContext({});
  // Wrapped so `var __prelude` stays local: only installWebGlobals decides what is global.
  const prelude = vm.runInContext(`(function () {\n${bundle}\nreturn __prelude;\n})()`, ctx);
  ctx.__prelude = prelude;
  prelude.installHostPort(
    (op: string, payload: string) => handleSyncOp(op, payload),
    (id: number, _op: string, payload: string) => {
      setTimeout(() => {
        const r = reply(JSON.parse(payload));
        prelude.settle(id, true, JSON.stringify(r.json), new TextEncoder().encode(r.body).buffer);
      }, 0);
    },
  );
  vm.runInContext('__prelude.installWebGlobals(globalThis); globalThis.fetch = __prelude.fetch; delete globalThis.__prelude;', ctx);
  delete ctx.__prelude;
  return ctx;
}

/** Runs an async guest body; its result comes back through a host callback, not a then(). */
function runGuest(ctx: vm.Context, body: string): Promise<unknown> {
  return new Promise((resolve) => {
    ctx.__report = (v: unknown) => resolve(v);
    vm.runInContext(`(async () => { try { __report(await (async () => { ${body} })()); } ` +
      `catch (e) { __report({ error: String(e && e.stack || e) }); } })();`, ctx);
  });
}

describe('the bundled web globals in a bare realm', () => {
  it('should stay small and name no host-ish global', () => {
    console.log(`web globals bundle (with host.ts, intrinsics.ts): ${bundle.length} bytes minified`);
    expect(bundle.length).toBeLessThan(60_000);
    expect(bundle).not.toMatch(/\b(window|self|process|require)\b/);
  });

  it('should define the globals like browsers: non-enumerable, writable, configurable', () => {
    const ctx = makeRealm(() => ({ json: {}, body: '' }));
    const names = ['URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'atob', 'btoa', 'crypto', 'structuredClone',
      'Headers', 'Request', 'Response', 'DOMException', 'fetch'];
    const descs = vm.runInContext(`JSON.stringify(${JSON.stringify(names)}.map((n) => {
      const d = Object.getOwnPropertyDescriptor(globalThis, n); return [n, typeof d.value, d.enumerable, d.writable, d.configurable];
    }))`, ctx);
    for (const [n, type, e, w, c] of JSON.parse(descs)) {
      expect([n, type === 'undefined', e, w, c]).toEqual([n, false, n === 'fetch', true, true]);
    }
    expect(vm.runInContext('typeof __prelude + Object.keys(globalThis).join()', ctx)).toBe('undefinedfetch');
  });

  it('should keep every class working after the guest poisons its built-ins', async () => {
    const ctx = makeRealm((p) => ({
      json: { status: 200, statusText: 'OK', headers: [['x-echo', p.method]], url: p.url, redirected: false },
      body: JSON.stringify({ got: p.headers }),
    }));
    vm.runInContext(`
      globalThis.__data = { d: new Date(0), m: new Map([[1, { n: [1, 2] }]]) };
      const boom = (what) => function () { throw new Error('poisoned ' + what); };
      for (const k of ['get', 'set', 'value']) {
        Object.defineProperty(Object.prototype, k, { __proto__: null, get: boom('descriptor ' + k), configurable: true });
      }
      JSON.parse = boom('JSON.parse'); JSON.stringify = boom('JSON.stringify');
      Array.prototype.push = boom('push'); Array.prototype.splice = boom('splice'); Array.prototype.sort = boom('sort');
      Array.prototype.map = boom('map'); Array.prototype[Symbol.iterator] = boom('array iterator');
      Object.defineProperty(Array.prototype, '0', { __proto__: null, set: boom('index setter'), configurable: true });
      Object.defineProperty(Array, Symbol.species, { __proto__: null, get: boom('species') });
      Promise.prototype.then = boom('then'); Function.prototype.apply = boom('apply'); Reflect.apply = boom('Reflect.apply');
      String.prototype.toLowerCase = boom('toLowerCase'); String.prototype.charCodeAt = boom('charCodeAt');
      String.prototype.toWellFormed = boom('toWellFormed'); String.fromCharCode = boom('fromCharCode');
      Map.prototype.get = boom('Map get'); Map.prototype.set = boom('Map set'); WeakMap.prototype.get = boom('WeakMap get');
      Uint8Array.prototype.set = boom('set'); Object.getPrototypeOf(Uint8Array.prototype).subarray = boom('subarray');
      Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), 'length', { __proto__: null, get: boom('length') });
      RegExp.prototype.exec = boom('exec'); Symbol.prototype.toString = boom('symbol');
    `, ctx);
    const out = await runGuest(ctx, `
      const u = new URL('/a?b=1', 'https://ex.test');
      u.searchParams.append('c', 'd e'); u.searchParams.sort(); u.hash = 'h';
      const p = new URLSearchParams('z=1&y=2'); p.set('z', '3'); p.delete('y');
      const enc = new TextEncoder().encode('h€llo');
      const dec = new TextDecoder().decode(enc);
      const h = new Headers({ B: '1', A: '2' }); h.append('a', '3');
      const it = h.entries(); const first = it.next().value;
      const c = structuredClone(__data); let n1; c.m.forEach((v) => { n1 = v.n[1]; });
      const res = await fetch('https://api.test/x', { method: 'post', body: 'hi', headers: { 'X-Y': 'z' } });
      const text = await res.text();
      const built = await Response.json({ k: 1 }).text();
      return [u.href, p.toString(), dec, first.join('='), h.get('A'), btoa(atob('aGk=')),
        crypto.getRandomValues(new Uint8Array(4)).byteLength, crypto.randomUUID().length, n1, c.d.getTime(), res.status,
        res.headers.get("x-echo"), text, built, enc.byteLength].join('|');
    `);
    expect(out).toBe([
      'https://ex.test/a?b=1&c=d+e#h', 'z=3', 'h€llo', 'a=2, 3', '2, 3', 'aGk=', 4, 36, 2, 0, 200, 'POST',
      '{"got":[["x-y","z"],["content-type","text/plain;charset=UTF-8"]]}', '{"k":1}', 7,
    ].join('|'));
  });

  it('should expose nothing of the host through the globals', () => {
    const ctx = makeRealm(() => ({ json: {}, body: '' }));
    const leaks = vm.runInContext(`
      const seen = new Set(); const found = [];
      const walk = (v, path, depth) => {
        if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v) || depth > 6) return;
        seen.add(v);
        for (const k of Reflect.ownKeys(v)) {
          const d = Object.getOwnPropertyDescriptor(v, k);
          const name = path + '.' + String(k);
          if (/hostSync|installHostPort|settle|handleSyncOp|__prelude/.test(String(k))) found.push(name);
          if (d && 'value' in d) walk(d.value, name, depth + 1);
        }
        walk(Object.getPrototypeOf(v), path + '.__proto__', depth + 1);
      };
      for (const n of ['URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'atob', 'btoa', 'crypto', 'structuredClone',
        'Headers', 'Request', 'Response', 'DOMException', 'fetch']) walk(globalThis[n], n, 0);
      JSON.stringify(found);
    `, ctx);
    expect(JSON.parse(leaks)).toEqual([]);
    expect(vm.runInContext('typeof process + typeof require + typeof global', ctx)).toBe('undefinedundefinedundefined');
  });
});
