/**
 * `URL` (https://url.spec.whatwg.org/#url-class). Parsing and every setter run in
 * Node's own WHATWG parser on the host (`url.parse`, `url.set` in
 * src/sandbox/host-utilities.ts): a full parser with IDNA tables in each isolate would
 * cost ~3 MB RSS per instance (shared/FINDINGS.md), and this way the guest's `URL` is
 * exactly as conformant as Node's. The guest keeps the parsed record, so getters cost
 * no host call; the constructor, `canParse`, `parse` and setters cost one.
 */
import { hostSync } from '../host.ts';
import { MapCtor, mapClear, mapGet, mapSet, ObjectFreeze } from '../intrinsics.ts';
import { mapSize } from './saved.ts';
import { linkedParams, resetParams, URLSearchParams } from './url-search-params.ts';
import { defineInterface, markPlatformObject, requireArgs, toUSVString } from './webidl.ts';

/** The URL record the host returns: every getter but `searchParams`. */
interface UrlRecord {
  href: string; origin: string; protocol: string; username: string; password: string;
  host: string; hostname: string; port: string; pathname: string; search: string; hash: string;
}

/**
 * Parsing is a synchronous hop to the host (~60 µs), and a mini-app parses the same few
 * URLs over and over (every `fetch` builds a Request). The result of Node's parser for a
 * given (input, base) never changes, and records are replaced, never mutated, so a small
 * cache of frozen records is safe. Failures are not cached (they throw).
 */
const PARSE_CACHE_MAX = 64;
const parseCache = new MapCtor<string, UrlRecord>();

const parseRecord = (input: string, base: string | undefined): UrlRecord => {
  // Length-prefixed, so no (base, input) pair can produce another pair's key.
  const key = base === undefined ? `-|${input}` : `${base.length}:${base}|${input}`;
  let rec = mapGet(parseCache, key);
  if (rec === undefined) {
    rec = ObjectFreeze(hostSync('url.parse', base === undefined ? { input } : { input, base }) as UrlRecord);
    if (mapSize(parseCache) >= PARSE_CACHE_MAX) mapClear(parseCache);
    mapSet(parseCache, key, rec);
  }
  return rec;
};
let preParsed: UrlRecord | undefined;

/**
 * @example
 * const u = new URL('/search?q=1', 'https://example.com');
 * u.searchParams.append('page', '2');
 * u.href // 'https://example.com/search?q=1&page=2'
 */
export class URL {
  #rec: UrlRecord;
  #params: URLSearchParams | null = null;

  constructor(url: unknown, base: unknown = undefined) {
    requireArgs(arguments.length, 1, 'URL');
    const input = toUSVString(url);
    const b = base === undefined ? undefined : toUSVString(base);
    if (preParsed !== undefined) {
      this.#rec = preParsed;
      preParsed = undefined;
    } else {
      this.#rec = parseRecord(input, b); // throws TypeError "Invalid URL"
    }
    markPlatformObject(this);
  }

  /** @example URL.canParse('not a url') // false */
  static canParse(url: unknown, base: unknown = undefined): boolean {
    requireArgs(arguments.length, 1, 'URL.canParse');
    const input = toUSVString(url);
    const b = base === undefined ? undefined : toUSVString(base);
    try {
      parseRecord(input, b);
      return true;
    } catch {
      return false;
    }
  }

  /** Like the constructor, but returns null instead of throwing. */
  static parse(url: unknown, base: unknown = undefined): URL | null {
    requireArgs(arguments.length, 1, 'URL.parse');
    const input = toUSVString(url);
    const b = base === undefined ? undefined : toUSVString(base);
    let rec: UrlRecord;
    try {
      rec = parseRecord(input, b);
    } catch {
      return null;
    }
    preParsed = rec;
    return new URL(input);
  }

  #set(attr: string, value: unknown): void {
    const v = toUSVString(value);
    const before = this.#rec.search;
    this.#rec = hostSync('url.set', { href: this.#rec.href, attr, value: v }) as UrlRecord;
    // The href and search setters re-parse the query into the searchParams list.
    if (this.#params !== null && this.#rec.search !== before) resetParams(this.#params, this.#rec.search);
  }

  get href(): string { return this.#rec.href; }
  set href(v: string) { this.#set('href', v); }
  get origin(): string { return this.#rec.origin; }
  get protocol(): string { return this.#rec.protocol; }
  set protocol(v: string) { this.#set('protocol', v); }
  get username(): string { return this.#rec.username; }
  set username(v: string) { this.#set('username', v); }
  get password(): string { return this.#rec.password; }
  set password(v: string) { this.#set('password', v); }
  get host(): string { return this.#rec.host; }
  set host(v: string) { this.#set('host', v); }
  get hostname(): string { return this.#rec.hostname; }
  set hostname(v: string) { this.#set('hostname', v); }
  get port(): string { return this.#rec.port; }
  set port(v: string) { this.#set('port', v); }
  get pathname(): string { return this.#rec.pathname; }
  set pathname(v: string) { this.#set('pathname', v); }
  get search(): string { return this.#rec.search; }
  set search(v: string) { this.#set('search', v); }

  /** Live both ways: changing it rewrites `search`, setting `search` or `href` refills it. */
  get searchParams(): URLSearchParams {
    if (this.#params === null) {
      this.#params = linkedParams(this.#rec.search, (serialized) => {
        this.#rec = hostSync('url.set', { href: this.#rec.href, attr: 'search', value: serialized }) as UrlRecord;
      });
    }
    return this.#params;
  }

  get hash(): string { return this.#rec.hash; }
  set hash(v: string) { this.#set('hash', v); }

  toString(): string {
    return this.#rec.href;
  }

  toJSON(): string {
    return this.#rec.href;
  }
}

defineInterface(URL, 'URL');
