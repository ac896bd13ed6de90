import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { atob as gAtob, btoa as gBtoa } from '../../runtime-api/prelude/web/base64.ts';
import { createCrypto, Crypto } from '../../runtime-api/prelude/web/crypto.ts';
import { DOMException as GuestDOMException } from '../../runtime-api/prelude/web/dom-exception.ts';
import { attachHost } from './host-port.ts';

attachHost();

const outcome = (f: () => string): string => {
  try {
    return `ok:${f()}`;
  } catch (e) {
    return `err:${(e as Error).name}`;
  }
};

describe('atob and btoa', () => {
  it('should follow forgiving-base64 on edge cases, like Node', () => {
    const cases = ['', 'aGk=', 'aGk', ' a G k = ', 'aGk==', 'aGk=a', '=', '==', 'a', 'ab', 'ab=', 'ab==', 'abc=', 'abcd=',
      'abcd==', '====', 'a===', '\taGk\n=\f\r', 'aGk\u00a0', '-_', 'YQ', 'YR', '\u0100', 'undefined', 'null'];
    for (const c of cases) expect(outcome(() => gAtob(c)), c).toBe(outcome(() => atob(c)));
    expect(() => gAtob('*')).toThrow(GuestDOMException);
    try {
      gAtob('*');
    } catch (e) {
      expect((e as GuestDOMException).name).toBe('InvalidCharacterError');
      expect((e as GuestDOMException).code).toBe(5);
      expect(e).toBeInstanceOf(Error);
    }
  });

  it('should round-trip and match Node on random input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
      const bin = String.fromCharCode(...b);
      expect(gBtoa(bin)).toBe(btoa(bin));
      expect(gAtob(gBtoa(bin))).toBe(bin);
    }));
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'AZaz09+/= \n\t.'.split('')) }), (s) => {
      expect(outcome(() => gAtob(s))).toBe(outcome(() => atob(s)));
    }), { numRuns: 2000 });
  });

  it('should reject non-Latin1 in btoa and missing arguments', () => {
    expect(() => gBtoa('€')).toThrow(/Latin1/);
    expect(gBtoa('\u00ff')).toBe('/w==');
    expect(() => (gAtob as any)()).toThrow(TypeError);
    expect(gBtoa(undefined)).toBe(btoa(undefined as any));
  });
});

describe('crypto', () => {
  const crypto = createCrypto();

  it('should fill integer typed arrays from the host CSPRNG', () => {
    const a = new Uint32Array(64);
    expect(crypto.getRandomValues(a)).toBe(a);
    expect(a.some((x) => x !== 0)).toBe(true);
    const view = new Uint8Array(new ArrayBuffer(16), 4, 8);
    crypto.getRandomValues(view);
    expect(new Uint8Array(view.buffer, 0, 4)).toEqual(new Uint8Array(4));
    expect(crypto.getRandomValues(new BigInt64Array(2))).toHaveLength(2);
    expect(crypto.getRandomValues(new Uint8Array(0))).toHaveLength(0);
    crypto.getRandomValues(new Uint8Array(65536));
  });

  it('should refuse floats, DataView and more than 65536 bytes', () => {
    expect(() => crypto.getRandomValues(new Float64Array(2))).toThrow(expect.objectContaining({ name: 'TypeMismatchError' }));
    expect(() => crypto.getRandomValues(new DataView(new ArrayBuffer(2)))).toThrow(expect.objectContaining({ name: 'TypeMismatchError' }));
    expect(() => crypto.getRandomValues(new Uint8Array(65537))).toThrow(expect.objectContaining({ name: 'QuotaExceededError', code: 22 }));
  });

  it('should make v4 UUIDs and not be constructible', () => {
    expect(crypto.randomUUID()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(crypto.randomUUID()).not.toBe(crypto.randomUUID());
    expect(() => new (Crypto as any)()).toThrow(/Illegal constructor/);
    expect(() => Crypto.prototype.randomUUID.call({})).toThrow(/Illegal invocation/);
    expect(Object.prototype.toString.call(crypto)).toBe('[object Crypto]');
  });
});

describe('DOMException', () => {
  it('should look like the web one', () => {
    const e = new GuestDOMException('boom', 'DataCloneError');
    expect([e.name, e.message, e.code]).toEqual(['DataCloneError', 'boom', 25]);
    expect(String(e)).toBe('DataCloneError: boom');
    expect(e.stack).toMatch(/^DataCloneError: boom/);
    expect(new GuestDOMException().name).toBe('Error');
    expect(new GuestDOMException('x', 'Custom').code).toBe(0);
    expect((GuestDOMException as any).DATA_CLONE_ERR).toBe(25);
    expect(Object.prototype.toString.call(e)).toBe('[object DOMException]');
    expect(new GuestDOMException('m', { name: 'AbortError', cause: 1 } as any).cause).toBe(1);
  });
});
