/**
 * The WHATWG URL web-platform-tests vectors (shared/wpt) against the guest `URL`,
 * which parses through the host's `url.*` ops. The bar (shared/wpt/README.md): pass
 * exactly what Node's own `URL` passes, case for case.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { URL as GuestURL } from '../../runtime-api/prelude/web/url.ts';
import { attachHost } from './host-port.ts';

attachHost();

const WPT = '/work/shared/wpt';
const urlTests = (JSON.parse(readFileSync(`${WPT}/urltestdata.json`, 'utf8')) as unknown[])
  .filter((t): t is Record<string, any> => typeof t === 'object' && t !== null);
const setterTests = JSON.parse(readFileSync(`${WPT}/setters_tests.json`, 'utf8')) as Record<string, any>;
const ATTRS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];

type Ctor = new (input: string, base?: string) => any;

/** Runs one urltestdata case; true when it passes. */
function runParse(URLClass: Ctor, t: Record<string, any>): boolean {
  let u: any;
  try {
    u = t.base === null || t.base === undefined ? new URLClass(t.input) : new URLClass(t.input, t.base);
  } catch {
    return t.failure === true;
  }
  if (t.failure === true) return false;
  for (const attr of ATTRS) if (attr in t && u[attr] !== t[attr]) return false;
  if ('searchParams' in t && u.searchParams.toString() !== t.searchParams) return false;
  return true;
}

function runSetter(URLClass: Ctor, attr: string, t: Record<string, any>): boolean {
  try {
    const u = new URLClass(t.href);
    u[attr] = t.new_value;
    for (const [key, value] of Object.entries(t.expected as Record<string, string>)) if (u[key] !== value) return false;
    return true;
  } catch {
    return false;
  }
}

function score(URLClass: Ctor): { parsePass: Set<number>; setterPass: Set<string>; setterTotal: number } {
  const parsePass = new Set<number>();
  urlTests.forEach((t, i) => { if (runParse(URLClass, t)) parsePass.add(i); });
  const setterPass = new Set<string>();
  let setterTotal = 0;
  for (const [attr, cases] of Object.entries(setterTests)) {
    if (attr === 'comment') continue;
    (cases as any[]).forEach((t, i) => {
      setterTotal++;
      if (runSetter(URLClass, attr, t)) setterPass.add(`${attr}#${i}`);
    });
  }
  return { parsePass, setterPass, setterTotal };
}

describe('URL against the WPT vectors', () => {
  it('should pass exactly the urltestdata and setters cases that Node passes', () => {
    const node = score(globalThis.URL as unknown as Ctor);
    const guest = score(GuestURL as unknown as Ctor);
    console.log(
      `WPT urltestdata: guest ${guest.parsePass.size}/${urlTests.length}, node ${node.parsePass.size}/${urlTests.length}; ` +
      `setters_tests: guest ${guest.setterPass.size}/${guest.setterTotal}, node ${node.setterPass.size}/${node.setterTotal}`,
    );
    expect(guest.parsePass.size).toBe(node.parsePass.size);
    expect(guest.setterPass.size).toBe(node.setterPass.size);
    // Not only the counts: the same cases.
    expect([...guest.parsePass].filter((i) => !node.parsePass.has(i))).toEqual([]);
    expect([...guest.setterPass].filter((k) => !node.setterPass.has(k))).toEqual([]);
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
