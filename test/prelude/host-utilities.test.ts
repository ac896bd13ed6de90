import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handleSyncOp, MAX_URL_CHARS } from '../../src/sandbox/host-utilities.ts';

const call = (op: string, payload: unknown) => {
  const out = handleSyncOp(op, typeof payload === 'string' ? payload : JSON.stringify(payload));
  return typeof out === 'string' ? JSON.parse(out) : out;
};
const invalid = (message: RegExp | string) => ({ error: { code: 'invalid_request', message: expect.stringMatching(message) } });

describe('handleSyncOp', () => {
  it('should parse URLs with Node and report failures as Invalid URL', () => {
    expect(call('url.parse', { input: '/p?q#h', base: 'HTTPS://Ex.test:443' }).ok).toEqual({
      href: 'https://ex.test/p?q#h', origin: 'https://ex.test', protocol: 'https:', username: '', password: '',
      host: 'ex.test', hostname: 'ex.test', port: '', pathname: '/p', search: '?q', hash: '#h',
    });
    expect(call('url.parse', { input: 'nope' })).toEqual(invalid('Invalid URL'));
  });

  it('should apply setters, ignoring bad values except for href', () => {
    expect(call('url.set', { href: 'https://x.test/', attr: 'port', value: '8080' }).ok.host).toBe('x.test:8080');
    expect(call('url.set', { href: 'https://x.test/', attr: 'port', value: 'abc' }).ok.href).toBe('https://x.test/');
    expect(call('url.set', { href: 'https://x.test/', attr: 'href', value: 'bad' })).toEqual(invalid('Invalid URL'));
    expect(call('url.set', { href: 'https://x.test/', attr: 'origin', value: 'x' })).toEqual(invalid(/unknown attr/));
    expect(call('url.set', { href: 'https://x.test/', attr: '__proto__', value: 'x' })).toEqual(invalid(/unknown attr/));
  });

  it('should not offer the form-urlencoded ops any more (they run in the isolate: THREATS F43)', () => {
    expect(call('usp.parse', { init: 'a=1' })).toEqual(invalid(/unknown platform op/));
    expect(call('usp.serialize', { pairs: [['a', 'b']] })).toEqual(invalid(/unknown platform op/));
  });

  it('should return random bytes as an ArrayBuffer within bounds, and UUIDs', () => {
    const b = handleSyncOp('random.bytes', '{"n":32}');
    expect(b).toBeInstanceOf(ArrayBuffer);
    expect((b as ArrayBuffer).byteLength).toBe(32);
    for (const n of [-1, 1.5, 65537, '4', null]) expect(call('random.bytes', { n })).toEqual(invalid(/0\.\.65536/));
    expect(call('random.uuid', {}).ok).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('should bound sizes and reject malformed payloads without throwing', () => {
    // URL input is bounded so that no input holds the event loop (THREATS F43), all strings of an op together.
    const longest = 'https://x.test/' + 'é'.repeat(MAX_URL_CHARS - 15);
    expect(call('url.parse', { input: longest }).ok.pathname).toHaveLength(1 + 6 * (MAX_URL_CHARS - 15));
    expect(call('url.parse', { input: longest + 'a' })).toEqual(invalid(/longer than 8192 characters/));
    expect(call('url.parse', { input: 'a'.repeat(MAX_URL_CHARS - 10), base: 'https://x.test/' })).toEqual(invalid(/longer than/));
    expect(call('url.set', { href: 'https://x.test/' + 'a'.repeat(8000), attr: 'hash', value: 'b'.repeat(200) })).toEqual(invalid(/longer than/));
    expect(call('url.parse', { input: 1 })).toEqual(invalid(/string/));
    expect(call('url.parse', '{not json')).toEqual(invalid(/not valid JSON/));
    expect(call('url.parse', '[1]')).toEqual(invalid(/object/));
    expect(call('fs.read', {})).toEqual(invalid(/unknown platform op/));
    expect(call('toString', {})).toEqual(invalid(/unknown platform op/));
    expect(call('url.parse', 'x'.repeat(5 << 20))).toEqual(invalid(/payload is larger/));
    fc.assert(fc.property(fc.string(), fc.string(), (op, payload) => {
      expect(() => handleSyncOp(op, payload)).not.toThrow();
    }));
    fc.assert(fc.property(fc.constantFrom('url.parse', 'url.set', 'random.bytes'), fc.json(), (op, payload) => {
      expect(() => handleSyncOp(op, payload)).not.toThrow();
    }));
  });
});
