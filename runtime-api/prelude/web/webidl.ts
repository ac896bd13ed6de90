/**
 * The Web IDL glue shared by the web globals: argument conversions, the shape of
 * interface objects (enumerable members, `Symbol.toStringTag`) and pair iterators
 * (https://webidl.spec.whatwg.org/#es-iterable), built from saved intrinsics only.
 */
import {
  ObjectCreate, ObjectDefineProperty, ReflectApply, stringCharCodeAt, SymbolIterator, SymbolToStringTag,
  TypeErrorCtor, WeakMapCtor, weakMapGet, weakMapSet,
} from '../intrinsics.ts';
import {
  dataDesc, defineData, IteratorPrototype, ObjectGetOwnPropertyDescriptor, ReflectOwnKeys, stringToWellFormed, WeakSetCtor,
  weakSetAdd, weakSetHas,
} from './saved.ts';

export type Pair = [string, string];

/** The members `definePairIterable` adds, for declaration merging with the class. */
export interface PairIterable<Self> {
  entries(): IterableIterator<Pair>;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  forEach(callback: (value: string, key: string, parent: Self) => void, thisArg?: unknown): void;
  [Symbol.iterator](): IterableIterator<Pair>;
}

/** Objects of the web classes: `structuredClone` refuses them, as browsers do. */
const platformObjects = new WeakSetCtor<object>();
export const markPlatformObject = (o: object): void => void weakSetAdd(platformObjects, o);
export const isPlatformObject = (o: object): boolean => weakSetHas(platformObjects, o);

/** TAB, LF, FF, CR, SPACE: the ASCII whitespace of the Infra standard. */
export const isAsciiWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;

/** Web IDL DOMString: ToString, which throws on symbols as IDL requires. */
export const toDOMString = (v: unknown): string => (typeof v === 'string' ? v : `${v as string}`);
/** Web IDL USVString: lone surrogates become U+FFFD. */
export const toUSVString = (v: unknown): string => stringToWellFormed(toDOMString(v));
/** Web IDL ByteString: every code unit must fit in a byte. */
export function toByteString(v: unknown): string {
  const s = toDOMString(v);
  for (let i = 0; i < s.length; i++) {
    if (stringCharCodeAt(s, i) > 0xff) throw new TypeErrorCtor(`Cannot convert to ByteString: code unit ${stringCharCodeAt(s, i)} at index ${i} is above 255`);
  }
  return s;
}

/** Web IDL's "N arguments required" check. */
export function requireArgs(given: number, needed: number, what: string): void {
  if (given < needed) {
    throw new TypeErrorCtor(`${what}: ${needed} argument${needed === 1 ? '' : 's'} required, but only ${given} present.`);
  }
}

/** Web IDL dictionary conversion: undefined/null → {}, other non-objects → TypeError. */
export function toDictionary(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' && typeof v !== 'function') throw new TypeErrorCtor(`${what}: the options argument must be an object`);
  return v as Record<string, unknown>;
}

/** Iterates a guest-supplied iterable by the protocol, with no reliance on `for…of`. */
function eachOf(value: object, method: unknown, visit: (item: unknown) => void): void {
  if (typeof method !== 'function') throw new TypeErrorCtor('value is not iterable');
  const it = ReflectApply(method, value, []) as { next: unknown };
  if (typeof it !== 'object' || it === null) throw new TypeErrorCtor('iterator is not an object');
  const next = it.next;
  for (;;) {
    const step = ReflectApply(next as Function, it, []) as { done: unknown; value: unknown };
    if (typeof step !== 'object' || step === null) throw new TypeErrorCtor('iterator result is not an object');
    if (step.done) return;
    visit(step.value);
  }
}

/**
 * Converts `sequence<sequence<T>> or record<T, T>` (the init of URLSearchParams and
 * Headers) into a fresh pair list; `convert` is the IDL string conversion of T.
 */
/**
 * The `set(name, value)` step shared by Headers and URLSearchParams (Fetch §5.2, URL
 * §6.2): the first pair named `name` takes the value, later ones are removed, and the
 * pair is appended when there was none. `name` is already normalised by the caller.
 */
export function setPair(list: Pair[], name: string, value: string): void {
  let found = false;
  let w = 0;
  for (let r = 0; r < list.length; r++) {
    if (list[r]![0] !== name) list[w++] = list[r]!;
    else if (!found) { list[w++] = [name, value]; found = true; }
  }
  list.length = w;
  if (!found) list[w] = [name, value];
}

export function toPairList(init: object, convert: (v: unknown) => string, what: string): Pair[] {
  const out: Pair[] = [];
  let n = 0;
  const method = (init as any)[SymbolIterator];
  if (method !== undefined && method !== null) {
    eachOf(init, method, (item) => {
      if (typeof item !== 'object' || item === null) throw new TypeErrorCtor(`${what}: each pair must be an iterable [name, value]`);
      const parts: unknown[] = [];
      let k = 0;
      eachOf(item, (item as any)[SymbolIterator], (part) => defineData(parts, k++, part));
      if (k !== 2) throw new TypeErrorCtor(`${what}: each pair must have exactly two items, not ${k}`);
      defineData(out, n++, [convert(parts[0]), convert(parts[1])]);
    });
    return out;
  }
  const keys = ReflectOwnKeys(init);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const desc = ObjectGetOwnPropertyDescriptor(init, key);
    if (desc === undefined || !desc.enumerable) continue;
    defineData(out, n++, [convert(key), convert((init as any)[key])]);
  }
  return out;
}

/**
 * Gives a class the shape of a Web IDL interface: prototype members enumerable,
 * `Symbol.toStringTag` set, the constructor's `prototype` fixed.
 */
export function defineInterface(ctor: Function, name: string): void {
  const proto = ctor.prototype as object;
  const keys = ReflectOwnKeys(proto);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (key === 'constructor' || typeof key === 'symbol') continue;
    const desc = ObjectGetOwnPropertyDescriptor(proto, key)!;
    ObjectDefineProperty(proto, key, { __proto__: null, ...desc, enumerable: true } as PropertyDescriptor);
  }
  ObjectDefineProperty(proto, SymbolToStringTag, dataDesc(name, false, false));
}

/**
 * Adds Web IDL pair-iterator members (`keys`, `values`, `entries`, `forEach`,
 * `@@iterator`) to `ctor.prototype`. `pairsOf` brand-checks and returns the live
 * pairs, so iterators and `forEach` see changes made while they run, as IDL says.
 */
export function definePairIterable(ctor: Function, name: string, pairsOf: (target: unknown) => Pair[]): void {
  const state = new WeakMapCtor<object, { target: unknown; kind: number; index: number }>();
  const iteratorProto = ObjectCreate(IteratorPrototype);
  const next = {
    next(this: unknown) {
      const s = typeof this === 'object' && this !== null ? weakMapGet(state, this) : undefined;
      if (s === undefined) throw new TypeErrorCtor(`next called on an object that is not a ${name} Iterator`);
      const pairs = pairsOf(s.target);
      if (s.index >= pairs.length) return { value: undefined, done: true };
      const pair = pairs[s.index++]!;
      return { value: s.kind === 0 ? pair[0] : s.kind === 1 ? pair[1] : [pair[0], pair[1]], done: false };
    },
  }.next;
  ObjectDefineProperty(iteratorProto, 'next', dataDesc(next));
  ObjectDefineProperty(iteratorProto, SymbolToStringTag, dataDesc(`${name} Iterator`, false, false));
  const make = (target: unknown, kind: number): object => {
    pairsOf(target);
    const it = ObjectCreate(iteratorProto);
    weakMapSet(state, it, { target, kind, index: 0 });
    return it;
  };
  const members = {
    entries(this: unknown) { return make(this, 2); },
    keys(this: unknown) { return make(this, 0); },
    values(this: unknown) { return make(this, 1); },
    forEach(this: unknown, callback: unknown, thisArg: unknown = undefined) {
      let pairs = pairsOf(this);
      if (typeof callback !== 'function') throw new TypeErrorCtor(`${name}.forEach: callback is not a function`);
      for (let i = 0; i < pairs.length; i++) {
        const pair = pairs[i]!;
        ReflectApply(callback, thisArg, [pair[1], pair[0], this]);
        pairs = pairsOf(this);
      }
    },
  };
  const proto = ctor.prototype as object;
  ObjectDefineProperty(proto, 'entries', dataDesc(members.entries));
  ObjectDefineProperty(proto, 'keys', dataDesc(members.keys));
  ObjectDefineProperty(proto, 'values', dataDesc(members.values));
  ObjectDefineProperty(proto, 'forEach', dataDesc(members.forEach));
  ObjectDefineProperty(proto, SymbolIterator, dataDesc(members.entries, false));
}
