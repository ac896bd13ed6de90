/**
 * The WHATWG URL web-platform-tests vectors (test/fixtures/wpt) against the guest `URL`,
 * which parses through the host's `url.*` ops. The bar (test/fixtures/wpt/README.md): pass
 * exactly what Node's own `URL` passes, case for case.
 */
import { describe, expect, it } from 'vitest';
import { URL as GuestURL } from '../../runtime-api/prelude/web/url.ts';
import { parsingVectors, runParsing, runSetters, setterGroups } from '../helpers/wpt.ts';
import { attachHost } from './host-port.ts';

attachHost();

describe('URL against the WPT vectors', () => {
  it('should pass exactly the urltestdata and setters cases that Node passes', () => {
    const passed = (r: boolean[]) => r.filter(Boolean).length;
    const node = { parsing: runParsing(parsingVectors, globalThis.URL), setters: runSetters(setterGroups, globalThis.URL) };
    const guest = { parsing: runParsing(parsingVectors, GuestURL), setters: runSetters(setterGroups, GuestURL) };
    console.log(
      `WPT urltestdata: guest ${passed(guest.parsing)}/${parsingVectors.length}, node ${passed(node.parsing)}/${parsingVectors.length}; ` +
      `setters_tests: guest ${passed(guest.setters)}/${guest.setters.length}, node ${passed(node.setters)}/${node.setters.length}`,
    );
    // Not only the counts: the same cases pass and fail.
    expect(guest.parsing).toEqual(node.parsing);
    expect(guest.setters).toEqual(node.setters);
  });

  it('should keep searchParams live after href and search are set', () => {
    const u = new GuestURL('https://x.test/?a=1');
    const p = u.searchParams;
    u.href = 'https://y.test/?b=2&b=3';
    expect(p.getAll('b')).toEqual(['2', '3']);
    u.search = '';
    expect(p.size).toBe(0);
    p.append('c', 'd e');
    expect(u.href).toBe('https://y.test/?c=d+e');
    p.delete('c');
    expect(u.href).toBe('https://y.test/');
    expect(u.searchParams).toBe(p);
  });

  it('should strip trailing spaces of an opaque path when the params empty the query', () => {
    const u = new GuestURL('data:space    ?test');
    u.searchParams.delete('test');
    const n = new URL('data:space    ?test');
    n.searchParams.delete('test');
    expect(u.href).toBe(n.href);
  });

  it('should throw a TypeError for an invalid URL and an invalid href', () => {
    expect(() => new GuestURL('no scheme')).toThrow(TypeError);
    expect(() => new GuestURL('/path', 'not a base')).toThrow(/Invalid URL/);
    const u = new GuestURL('https://x.test/');
    expect(() => { u.href = 'nope'; }).toThrow(TypeError);
    expect(u.href).toBe('https://x.test/');
  });

  it('should offer canParse, parse, toJSON and the interface shape', () => {
    expect(GuestURL.canParse('https://x.test')).toBe(true);
    expect(GuestURL.canParse('x', 'y')).toBe(false);
    expect(GuestURL.parse('nope')).toBeNull();
    expect(GuestURL.parse('/p', 'https://x.test/a')!.href).toBe('https://x.test/p');
    const u = new GuestURL('https://x.test/a');
    expect(JSON.stringify({ u })).toBe('{"u":"https://x.test/a"}');
    expect(Object.prototype.toString.call(u)).toBe('[object URL]');
    expect(GuestURL.length).toBe(1);
    expect(Object.keys(GuestURL.prototype)).toContain('href');
    expect(() => (GuestURL as any)('https://x.test')).toThrow(TypeError);
    expect(() => Reflect.get(GuestURL.prototype, 'href', {})).toThrow(TypeError);
    expect(() => new (GuestURL as any)()).toThrow(/1 argument required/);
  });

  it('should convert lone surrogates and reject symbols like USVString', () => {
    expect(new GuestURL('https://x.test/\ud800').pathname).toBe(new URL('https://x.test/\ud800').pathname);
    expect(() => new GuestURL(Symbol() as any)).toThrow(TypeError);
  });

  it('should reject inputs over the host size bound instead of copying them', () => {
    expect(() => new GuestURL(`https://x.test/${'a'.repeat(1 << 20)}`)).toThrow(/longer than/);
  });
});
