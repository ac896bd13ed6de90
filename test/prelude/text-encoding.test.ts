import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextDecoder as GuestDecoder, TextEncoder as GuestEncoder } from '../../runtime-api/prelude/web/text-encoding.ts';

const bytes = (...b: number[]) => new Uint8Array(b);

describe('TextEncoder', () => {
  it('should encode like Node, lone surrogates as U+FFFD', () => {
    const enc = new GuestEncoder();
    for (const s of ['', 'abc', '€', '\u{1F600}', '\ud800', 'a\udc00b', '\udbff\udfff', '\ud83d\ud83d\ude00']) {
      expect(enc.encode(s)).toEqual(new TextEncoder().encode(s));
    }
    expect(enc.encode()).toEqual(new Uint8Array(0));
    expect(enc.encoding).toBe('utf-8');
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => {
      expect(Buffer.from(enc.encode(s)).equals(new TextEncoder().encode(s))).toBe(true);
    }));
  });

  it('should encodeInto without splitting a character', () => {
    const enc = new GuestEncoder();
    const dest = new Uint8Array(5);
    expect(enc.encodeInto('a\u{1F600}b', dest)).toEqual({ read: 3, written: 5 });
    expect(enc.encodeInto('\u{1F600}', new Uint8Array(3))).toEqual({ read: 0, written: 0 });
    expect(enc.encodeInto('a€', new Uint8Array(new ArrayBuffer(10), 6, 4))).toEqual({ read: 2, written: 4 });
    expect(() => enc.encodeInto('a', new Uint16Array(2) as any)).toThrow(TypeError);
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.nat(20), (s, n) => {
      expect(enc.encodeInto(s, new Uint8Array(n))).toEqual(new TextEncoder().encodeInto(s, new Uint8Array(n)));
    }));
  });
});

describe('TextDecoder', () => {
  it('should decode arbitrary bytes exactly like Node, fatal or not', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      expect(new GuestDecoder().decode(b)).toBe(new TextDecoder().decode(b));
      let mine: string | Error;
      let node: string | Error;
      try { mine = new GuestDecoder('utf-8', { fatal: true }).decode(b); } catch (e) { mine = e as Error; }
      try { node = new TextDecoder('utf-8', { fatal: true }).decode(b); } catch (e) { node = e as Error; }
      expect(typeof mine).toBe(typeof node);
      if (typeof mine !== 'string') expect(mine).toBeInstanceOf(TypeError);
    }), { numRuns: 2000 });
  });

  it('should emit U+FFFD per maximal subpart', () => {
    const d = new GuestDecoder();
    expect(d.decode(bytes(0xf0, 0x9f, 0x98))).toBe('\ufffd');
    expect(d.decode(bytes(0xe2, 0x82, 0x41))).toBe('\ufffdA');
    expect(d.decode(bytes(0xed, 0xa0, 0x80))).toBe('\ufffd\ufffd\ufffd');
    expect(d.decode(bytes(0xc0, 0xaf))).toBe('\ufffd\ufffd');
    expect(d.decode(bytes(0xf4, 0x90, 0x80, 0x80))).toBe('\ufffd\ufffd\ufffd\ufffd');
  });

  it('should strip one BOM unless ignoreBOM', () => {
    expect(new GuestDecoder().decode(bytes(0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0x41))).toBe('\ufeffA');
    expect(new GuestDecoder('utf8', { ignoreBOM: true }).decode(bytes(0xef, 0xbb, 0xbf, 0x41))).toBe('\ufeffA');
  });

  it('should stream across calls and flush at the end', () => {
    const d = new GuestDecoder();
    const all = new TextEncoder().encode('\ufeffa€\u{1F600}');
    let out = '';
    for (const b of all) out += d.decode(new Uint8Array([b]), { stream: true });
    out += d.decode();
    expect(out).toBe('a€\u{1F600}');
    expect(d.decode(bytes(0xe2, 0x82), { stream: true })).toBe('');
    expect(d.decode()).toBe('\ufffd');
    expect(d.decode(bytes(0xef, 0xbb, 0xbf, 0x41))).toBe('A');
  });

  it('should throw in fatal mode', () => {
    const d = new GuestDecoder('utf-8', { fatal: true });
    expect(d.fatal).toBe(true);
    expect(() => d.decode(bytes(0xff))).toThrow(TypeError);
    expect(() => d.decode(bytes(0xe2, 0x82))).toThrow(TypeError);
    expect(d.decode(bytes(0x41))).toBe('A');
  });

  it('should accept the utf-8 labels and reject others with RangeError', () => {
    for (const l of ['utf-8', 'UTF8', ' unicode-1-1-utf-8\n', 'unicode11utf8', 'x-unicode20utf8']) {
      expect(new GuestDecoder(l).encoding).toBe('utf-8');
    }
    for (const l of ['latin1', 'utf-16le', 'utf 8', '', '\u00a0utf-8']) expect(() => new GuestDecoder(l)).toThrow(RangeError);
  });

  it('should take ArrayBuffer, any view and DataView, and decode large inputs', () => {
    const buf = new TextEncoder().encode('héllo').buffer;
    const d = new GuestDecoder();
    expect(d.decode(buf)).toBe('héllo');
    expect(d.decode(new DataView(buf, 1))).toBe('éllo');
    expect(d.decode(new Uint16Array(new TextEncoder().encode('abcd').buffer))).toBe('abcd');
    expect(() => d.decode('x' as any)).toThrow(TypeError);
    const big = 'x€\u{1F600}'.repeat(50_000);
    expect(d.decode(new TextEncoder().encode(big))).toBe(big);
  });
});
