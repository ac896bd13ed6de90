/**
 * `Headers` (https://fetch.spec.whatwg.org/#headers-class). Names are stored
 * lowercased (HTTP names are case-insensitive; iteration lowercases anyway); values
 * are normalised and validated; `get` combines repeated values with ", "; iteration
 * is "sort and combine", with each `set-cookie` value kept apart. As in Deno,
 * Workers and undici, there are no browser "forbidden header names": the egress
 * proxy, not the guest, drops hop-by-hop and proxy headers (THREATS D34).
 */
import { stringCharCodeAt, stringSlice, stringToLowerCase, TypeErrorCtor } from '../intrinsics.ts';
import { append, arraySort } from './saved.ts';
import {
  defineInterface, definePairIterable, markPlatformObject, type Pair, type PairIterable, requireArgs, toByteString, toPairList, setPair } from './webidl.ts';

export type Guard = 'none' | 'immutable';

// RFC 9110 §5.6.2 token characters, as a lookup table over ASCII.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/** True when `s` is a non-empty RFC 9110 token (a valid header name or method). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = stringCharCodeAt(s, i);
    if (c > 127 || TOKEN[c] === 0) return false;
  }
  return true;
}

const isHttpWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function checkName(name: unknown): string {
  const n = toByteString(name);
  if (!isToken(n)) throw new TypeErrorCtor(`Headers: "${n}" is not a valid header name`);
  return stringToLowerCase(n);
}

/** Strips leading and trailing HTTP whitespace; rejects NUL, CR and LF (Fetch §2.2). */
function checkValue(value: unknown): string {
  const v = toByteString(value);
  let start = 0;
  let end = v.length;
  while (start < end && isHttpWhitespace(stringCharCodeAt(v, start))) start++;
  while (end > start && isHttpWhitespace(stringCharCodeAt(v, end - 1))) end--;
  const out = stringSlice(v, start, end);
  for (let i = 0; i < out.length; i++) {
    const c = stringCharCodeAt(out, i);
    if (c === 0 || c === 0x0a || c === 0x0d) throw new TypeErrorCtor(`Headers: the value of a header may not contain NUL, CR or LF`);
  }
  return out;
}

const byName = (a: Pair, b: Pair): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Internal hooks for request.ts, response.ts and fetch.ts; unreachable from mini-apps. */
export let headerPairs: (h: unknown) => Pair[];
export let setGuard: (h: unknown, guard: Guard) => void;
export let sortedPairs: (h: unknown) => Pair[];
/** Appends a header after validating it; throws once the guard is immutable. */
export let fillHeaders: (h: unknown, name: string, value: string) => void;

/**
 * @example
 * const h = new Headers({ 'Content-Type': 'text/plain' });
 * h.append('Accept', 'a'); h.append('accept', 'b'); h.get('ACCEPT') // 'a, b'
 */
export class Headers {
  #list: Pair[] = [];
  #guard: Guard = 'none';
  #sorted: Pair[] | null = null;

  constructor(init: unknown = undefined) {
    markPlatformObject(this);
    if (init === undefined) return;
    if (typeof init !== 'object' && typeof init !== 'function' || init === null) {
      throw new TypeErrorCtor('Headers: init must be a Headers object, an array of pairs or a record');
    }
    const pairs = #list in (init as object) ? (init as Headers).#list : toPairList(init as object, toByteString, 'Headers');
    for (let i = 0; i < pairs.length; i++) this.#add(checkName(pairs[i]![0]), checkValue(pairs[i]![1]));
  }

  #add(name: string, value: string): void {
    if (this.#guard === 'immutable') throw new TypeErrorCtor('Headers: these headers are immutable');
    append(this.#list, [name, value]);
    this.#sorted = null;
  }

  #remove(name: string): void {
    const list = this.#list;
    let w = 0;
    for (let r = 0; r < list.length; r++) if (list[r]![0] !== name) list[w++] = list[r]!;
    list.length = w;
    this.#sorted = null;
  }

  static #of(h: unknown): Headers {
    if (typeof h !== 'object' || h === null || !(#list in h)) throw new TypeErrorCtor('Illegal invocation: not a Headers');
    return h as Headers;
  }

  /** Fetch's "sort and combine", cached until the next change. */
  static #sortAndCombine(h: unknown): Pair[] {
    const self = Headers.#of(h);
    if (self.#sorted !== null) return self.#sorted;
    const list: Pair[] = [];
    for (let i = 0; i < self.#list.length; i++) append(list, self.#list[i]!);
    arraySort(list, byName);
    const out: Pair[] = [];
    for (let i = 0; i < list.length; i++) {
      const pair = list[i]!;
      const last = out.length === 0 ? undefined : out[out.length - 1]!;
      if (last !== undefined && last[0] === pair[0] && pair[0] !== 'set-cookie') last[1] = `${last[1]}, ${pair[1]}`;
      else append(out, [pair[0], pair[1]]);
    }
    return (self.#sorted = out);
  }

  static {
    headerPairs = (h) => Headers.#of(h).#list;
    setGuard = (h, g) => void (Headers.#of(h).#guard = g);
    sortedPairs = Headers.#sortAndCombine;
    fillHeaders = (h, name, value) => Headers.#of(h).#add(checkName(name), checkValue(value));
  }

  append(name: unknown, value: unknown): void {
    requireArgs(arguments.length, 2, 'Headers.append');
    this.#add(checkName(name), checkValue(value));
  }

  delete(name: unknown): void {
    requireArgs(arguments.length, 1, 'Headers.delete');
    const n = checkName(name);
    if (this.#guard === 'immutable') throw new TypeErrorCtor('Headers: these headers are immutable');
    this.#remove(n);
  }

  get(name: unknown): string | null {
    requireArgs(arguments.length, 1, 'Headers.get');
    const n = checkName(name);
    let out: string | null = null;
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === n) out = out === null ? list[i]![1] : `${out}, ${list[i]![1]}`;
    return out;
  }

  /** Every `Set-Cookie` value on its own (they may contain commas). */
  getSetCookie(): string[] {
    const out: string[] = [];
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === 'set-cookie') append(out, list[i]![1]);
    return out;
  }

  has(name: unknown): boolean {
    requireArgs(arguments.length, 1, 'Headers.has');
    const n = checkName(name);
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === n) return true;
    return false;
  }

  set(name: unknown, value: unknown): void {
    requireArgs(arguments.length, 2, 'Headers.set');
    const n = checkName(name);
    const v = checkValue(value);
    if (this.#guard === 'immutable') throw new TypeErrorCtor('Headers: these headers are immutable');
    setPair(this.#list, n, v);
    this.#sorted = null;
  }
}

export interface Headers extends PairIterable<Headers> {}
defineInterface(Headers, 'Headers');
definePairIterable(Headers, 'Headers', (h) => sortedPairs(h));
