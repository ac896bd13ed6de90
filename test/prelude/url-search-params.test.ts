import { describe, expect, it } from 'vitest';
import { URLSearchParams as GuestUSP } from '../../runtime-api/prelude/web/url-search-params.ts';
import { attachHost } from './host-port.ts';

attachHost();

describe('URLSearchParams', () => {
  it('should parse strings like Node, stripping one leading "?"', () => {
    for (const s of ['', '?', '??a=b', 'a=1&a=2&b', 'a+b=c%20d&%zz=%', '=x&&y=', 'é=ü&%F0%9F%98%80=1', '%FF=%C3']) {
      expect([...new GuestUSP(s)]).toEqual([...new URLSearchParams(s)]);
      expect(new GuestUSP(s).toString()).toBe(new URLSearchParams(s).toString());
    }
  });

  it('should init from pairs, a record and another URLSearchParams', () => {
    expect(new GuestUSP([['a', '1'], ['a', 2] as any]).getAll('a')).toEqual(['1', '2']);
    expect(new GuestUSP(new Map([['m', 'n']]) as any).get('m')).toBe('n');
    expect(new GuestUSP({ b: '2', a: '1' }).toString()).toBe('b=2&a=1');
    const src = new GuestUSP('x=1');
    const copy = new GuestUSP(src as any);
    copy.append('y', '2');
    expect(src.toString()).toBe('x=1');
    expect(() => new GuestUSP([['a']] as any)).toThrow(TypeError);
    expect(() => new GuestUSP([['a', 'b', 'c']] as any)).toThrow(TypeError);
    expect(new GuestUSP(null as any).toString()).toBe('null=');
  });

  it('should append, delete with and without value, get, getAll, has, set and size', () => {
    const p = new GuestUSP('a=1&b=2&a=3');
    expect(p.size).toBe(3);
    expect(p.get('a')).toBe('1');
    expect(p.get('zz')).toBeNull();
    expect(p.has('a', '3')).toBe(true);
    expect(p.has('a', '4')).toBe(false);
    p.delete('a', '1');
    expect(p.toString()).toBe('b=2&a=3');
    p.set('b', 'x');
    p.append('b', 'y');
    p.set('b', 'z');
    expect(p.toString()).toBe('b=z&a=3');
    p.delete('b');
    expect(p.toString()).toBe('a=3');
    p.set('new', 'v');
    expect(p.toString()).toBe('a=3&new=v');
  });

  it('should sort stably by UTF-16 code units', () => {
    const p = new GuestUSP('z=1&a=2&z=0&\uFFFD=x&\u{1F600}=y&a=1');
    p.sort();
    const n = new URLSearchParams('z=1&a=2&z=0&\uFFFD=x&\u{1F600}=y&a=1');
    n.sort();
    expect([...p]).toEqual([...n]);
    expect([...p.keys()]).toEqual(['a', 'a', 'z', 'z', '\u{1F600}', '\uFFFD']);
  });

  it('should serialize like Node', () => {
    const pairs: [string, string][] = [['a b', "c'd"], ['~*-._', '!()'], ['\u00e9', '\u{1F600}'], ['&=', '+%']];
    expect(new GuestUSP(pairs).toString()).toBe(new URLSearchParams(pairs).toString());
  });

  it('should iterate live with keys, values, entries, forEach and the default iterator', () => {
    const p = new GuestUSP('a=1&b=2');
    expect([...p.values()]).toEqual(['1', '2']);
    expect([...p.entries()]).toEqual([['a', '1'], ['b', '2']]);
    const it = p[Symbol.iterator]();
    expect(Object.prototype.toString.call(it)).toBe('[object URLSearchParams Iterator]');
    expect(it.next()).toEqual({ value: ['a', '1'], done: false });
    p.append('c', '3');
    expect([...it]).toEqual([['b', '2'], ['c', '3']]);
    const seen: string[] = [];
    p.forEach(function (this: unknown, value, key, parent) {
      expect(this).toBe(seen);
      expect(parent).toBe(p);
      seen.push(`${key}=${value}`);
    }, seen);
    expect(seen).toEqual(['a=1', 'b=2', 'c=3']);
    expect(p[Symbol.iterator]).toBe(p.entries);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(it))).toBe(Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())));
  });

  it('should brand-check its methods and require arguments', () => {
    expect(() => GuestUSP.prototype.get.call({}, 'a')).toThrow(TypeError);
    expect(() => (new GuestUSP() as any).append('a')).toThrow(/2 arguments required/);
    expect(() => (GuestUSP.prototype.keys as any).call({})).toThrow(TypeError);
    expect(Object.prototype.toString.call(new GuestUSP())).toBe('[object URLSearchParams]');
  });
});
