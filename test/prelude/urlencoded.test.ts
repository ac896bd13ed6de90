/**
 * The form-urlencoded parser and serializer moved from the host (Node's, quadratic in the
 * number of pairs) into the isolate (THREATS F43). They must agree with Node's
 * URLSearchParams on every input, and stay linear.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseUrlencoded, serializeUrlencoded } from '../../runtime-api/prelude/web/urlencoded.ts';

/**
 * Node's parser, fed the same bytes with every non-ASCII character percent-encoded (the
 * standard decodes both to the same bytes). Fed raw, Node 24 mis-decodes a literal
 * non-ASCII character after an invalid escape: `%a0\uFEFF` gives U+FFFD U+FFFD, where
 * the standard (and Node itself for `%a0%EF%BB%BF`) gives U+FFFD U+FEFF.
 */
const nodeParse = (s: string) => Array.from(new URLSearchParams(s.toWellFormed().replace(/[^\x00-\x7f]/gu, (c) => encodeURIComponent(c))));
const nodeSerialize = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();

/** Strings made of the characters the format treats specially, plus a few odd ones. */
const queryText = fc.stringMatching(/^[a=&+%?0-9A-Fa-fé\u{1F600}\uFEFF\u0000 ]{0,40}$/u);

describe('application/x-www-form-urlencoded in the isolate', () => {
  it('should parse exactly as Node does', () => {
    for (const s of ['', '?', '?a=1&b=%20+', 'a&&b', '=x', 'a==b', '%', '%zz=%4', '%C3%A9=%E9', '%EF%BB%BFa=1', 'a+b=c+d', '\uFEFFx']) {
      expect(parseUrlencoded(s), s).toEqual(nodeParse(s));
    }
    fc.assert(fc.property(queryText, (s) => {
      expect(parseUrlencoded(s)).toEqual(nodeParse(s));
    }), { numRuns: 500 });
    // The constructor hands the parser a USVString (lone surrogates already replaced).
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => {
      expect(parseUrlencoded(s.toWellFormed())).toEqual(nodeParse(s));
    }), { numRuns: 500 });
  });

  it('should serialize exactly as Node does', () => {
    expect(serializeUrlencoded([['a b', 'é'], ['*-._', '~!\'()'], ['', '']])).toBe(nodeSerialize([['a b', 'é'], ['*-._', '~!\'()'], ['', '']]));
    const pair = fc.tuple(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }));
    fc.assert(fc.property(fc.array(pair, { maxLength: 8 }), (pairs) => {
      expect(serializeUrlencoded(pairs)).toBe(nodeSerialize(pairs));
    }), { numRuns: 500 });
  });

  it('should parse half a million empty pairs in linear time (Node: quadratic)', () => {
    // Not a timing assertion: the count shows the whole input was parsed in one pass.
    expect(parseUrlencoded('a&'.repeat(512 * 1024))).toHaveLength(512 * 1024);
  });
});
