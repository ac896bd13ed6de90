/**
 * The WHATWG URL web-platform-tests vectors (vendored in test/fixtures/wpt/ with their
 * licence and source, so no test reads outside the checkout) and the two runners that
 * score a `URL` class against them, one verdict per vector. The runners close over nothing, so they also run inside an isolate as a bundle
 * (helpers/bundle.ts), with the isolate's own `URL` as the default.
 */
import { readFileSync } from 'node:fs';

const WPT = new URL('../fixtures/wpt/', import.meta.url);

/** urltestdata.json without its comment strings. */
export const parsingVectors = (JSON.parse(readFileSync(new URL('urltestdata.json', WPT), 'utf8')) as unknown[]).filter(
  (x) => typeof x === 'object' && x !== null,
);
/** setters_tests.json: attribute → cases (and a `comment`). */
export const setterGroups = JSON.parse(readFileSync(new URL('setters_tests.json', WPT), 'utf8')) as Record<string, unknown>;

/** One verdict per urltestdata vector: parsed (or refused) as expected, every given attribute and searchParams equal. */
export function runParsing(vectors: any[], U: any = URL): boolean[] {
  const attrs = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
  return vectors.map((v) => {
    let url: any;
    try {
      url = v.base === null || v.base === undefined ? new U(v.input) : new U(v.input, v.base);
    } catch {
      return v.failure === true;
    }
    if (v.failure === true) return false;
    if (v.searchParams !== undefined && url.searchParams.toString() !== v.searchParams) return false;
    return attrs.every((a) => v[a] === undefined || url[a] === v[a]);
  });
}

/** One verdict per setters case, in attribute order: after the set, every expected attribute equal. */
export function runSetters(groups: Record<string, any>, U: any = URL): boolean[] {
  const out: boolean[] = [];
  for (const attr of Object.keys(groups)) {
    if (attr === 'comment') continue;
    for (const t of groups[attr]) {
      try {
        const url = new U(t.href);
        url[attr] = t.new_value;
        out.push(Object.keys(t.expected).every((k) => url[k] === t.expected[k]));
      } catch {
        out.push(false);
      }
    }
  }
  return out;
}
