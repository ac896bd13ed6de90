/**
 * `URLSearchParams` (https://url.spec.whatwg.org/#interface-urlsearchparams). The list
 * lives in the guest, and so do parsing and serialising the application/x-www-form-urlencoded
 * form (urlencoded.ts: linear, on the isolate's thread; THREATS F43).
 */
import { TypeErrorCtor } from '../intrinsics.ts';
import { append, arraySort } from './saved.ts';
import { parseUrlencoded, serializeUrlencoded } from './urlencoded.ts';
import {
  defineInterface, definePairIterable, markPlatformObject, type Pair, type PairIterable, requireArgs, toPairList, toUSVString, setPair } from './webidl.ts';

/** What a URL linked to its `searchParams` object is told after the list changes. */
type UpdateUrl = (serialized: string) => void;

const parse = (query: string): Pair[] => (query === '' ? [] : parseUrlencoded(query));
const byName = (a: Pair, b: Pair): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
let internalInit = false;

/** Internal hooks for url.ts and body.ts; unreachable from mini-app code. */
export let linkedParams: (query: string, update: UpdateUrl) => URLSearchParams;
export let resetParams: (p: URLSearchParams, query: string) => void;
/** The live pair list of a URLSearchParams; throws TypeError for anything else. */
export let paramsList: (p: unknown) => Pair[];

/**
 * @example
 * const p = new URLSearchParams('a=1&b=2'); p.append('a', '3'); p.getAll('a') // ['1', '3']
 */
export class URLSearchParams {
  #list: Pair[];
  #update: UpdateUrl | null = null;

  constructor(init: unknown = '') {
    markPlatformObject(this);
    if (internalInit) {
      this.#list = [];
    } else if (typeof init === 'object' && init !== null || typeof init === 'function') {
      const other = init as URLSearchParams;
      this.#list = #list in other ? copy(other.#list) : toPairList(init as object, toUSVString, 'URLSearchParams');
    } else {
      this.#list = parse(toUSVString(init)); // Node strips one leading '?', as the standard says
    }
  }

  /** Creates the `searchParams` object of a URL: `update` runs after every change. */
  static #linked(query: string, update: UpdateUrl): URLSearchParams {
    internalInit = true;
    try {
      const p = new URLSearchParams();
      p.#list = parse(query);
      p.#update = update;
      return p;
    } finally {
      internalInit = false;
    }
  }

  static #reset(p: URLSearchParams, query: string): void {
    p.#list = parse(query);
  }

  static #pairs(p: unknown): Pair[] {
    if (typeof p !== 'object' || p === null || !(#list in p)) throw new TypeErrorCtor('Illegal invocation: not a URLSearchParams');
    return (p as URLSearchParams).#list;
  }

  static {
    linkedParams = URLSearchParams.#linked;
    resetParams = URLSearchParams.#reset;
    paramsList = URLSearchParams.#pairs;
  }

  #changed(): void {
    if (this.#update !== null) this.#update(serialize(this.#list));
  }

  get size(): number {
    return this.#list.length;
  }

  append(name: unknown, value: unknown): void {
    requireArgs(arguments.length, 2, 'URLSearchParams.append');
    append(this.#list, [toUSVString(name), toUSVString(value)]);
    this.#changed();
  }

  delete(name: unknown, value: unknown = undefined): void {
    requireArgs(arguments.length, 1, 'URLSearchParams.delete');
    const n = toUSVString(name);
    const v = value === undefined ? undefined : toUSVString(value);
    const list = this.#list;
    let w = 0;
    for (let r = 0; r < list.length; r++) {
      if (!(list[r]![0] === n && (v === undefined || list[r]![1] === v))) list[w++] = list[r]!;
    }
    list.length = w; // no splice(): it consults a (poisonable) species constructor
    this.#changed();
  }

  get(name: unknown): string | null {
    requireArgs(arguments.length, 1, 'URLSearchParams.get');
    const n = toUSVString(name);
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === n) return list[i]![1];
    return null;
  }

  getAll(name: unknown): string[] {
    requireArgs(arguments.length, 1, 'URLSearchParams.getAll');
    const n = toUSVString(name);
    const out: string[] = [];
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === n) append(out, list[i]![1]);
    return out;
  }

  has(name: unknown, value: unknown = undefined): boolean {
    requireArgs(arguments.length, 1, 'URLSearchParams.has');
    const n = toUSVString(name);
    const v = value === undefined ? undefined : toUSVString(value);
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === n && (v === undefined || list[i]![1] === v)) return true;
    return false;
  }

  set(name: unknown, value: unknown): void {
    requireArgs(arguments.length, 2, 'URLSearchParams.set');
    const n = toUSVString(name);
    const v = toUSVString(value);
    setPair(this.#list, n, v);
    this.#changed();
  }

  /** Stable sort by name, comparing UTF-16 code units (JS string order). */
  sort(): void {
    arraySort(this.#list, byName);
    this.#changed();
  }

  toString(): string {
    return serialize(this.#list);
  }
}

function copy(list: Pair[]): Pair[] {
  const out: Pair[] = [];
  for (let i = 0; i < list.length; i++) append(out, [list[i]![0], list[i]![1]]);
  return out;
}

function serialize(list: Pair[]): string {
  return serializeUrlencoded(list);
}

export interface URLSearchParams extends PairIterable<URLSearchParams> {}
defineInterface(URLSearchParams, 'URLSearchParams');
definePairIterable(URLSearchParams, 'URLSearchParams', (p) => paramsList(p));
