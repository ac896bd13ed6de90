/**
 * `structuredClone` (https://html.spec.whatwg.org/multipage/structured-data.html),
 * done in the guest: primitives but symbols, plain objects, arrays, Date, RegExp,
 * Map, Set, ArrayBuffer, typed arrays, DataView, errors, boxed primitives and
 * DOMException, with cycles and shared references kept. Functions, symbols, WeakMap,
 * WeakSet, WeakRef, Promise, SharedArrayBuffer and the web classes (URL, Headers…)
 * throw a `DataCloneError`; so does nesting deeper than 10,000 (THREATS B15).
 * `transfer` is not supported. Proxies cannot be told apart and clone as their target.
 *
 * The walk is iterative (an explicit stack, depth-first in the standard's order), so
 * the depth bound, not the guest's call stack, is what limits nesting.
 */
import {
  ArrayBufferCtor, arrayBufferByteLength, ArrayBufferIsView, ArrayIsArray, MapCtor, mapGet, mapHas, mapSet,
  ObjectDefineProperty, ObjectHasOwn, ObjectKeys, typedArrayBuffer, typedArrayByteOffset, Uint8ArrayCtor,
} from '../intrinsics.ts';
import {
  K_BIGINT, K_BOOLEAN, K_BUFFER, K_DATE, K_MAP, K_NUMBER, K_OBJECT, K_PROMISE, K_REGEXP, K_SET, K_SHARED, K_STRING, K_SYMBOL,
  K_WEAK, kindOf,
} from './clone-kinds.ts';
import { DOMException, domException, isDOMException } from './dom-exception.ts';
import {
  append, defineData, arrayBufferDetached, arrayBufferMaxByteLength, arrayBufferResizable, bigintValueOf, booleanValueOf, dataDesc,
  DataViewCtor, dataViewBuffer, dataViewByteLength, dataViewByteOffset, DateCtor, dateGetTime, ErrorIsError, errorCtors,
  mapForEach, numberValueOf, ObjectCtor, ObjectGetOwnPropertyDescriptor, RegExpCtor, regExpFlags, regExpSource, SetCtor,
  setAdd, setForEach, stringValueOf, typedArrayCtors, typedArrayLength, typedArraySet, typedArrayTag,
} from './saved.ts';
import { isPlatformObject, requireArgs, toDictionary } from './webidl.ts';

/** Deepest nesting structuredClone accepts. */
export const MAX_CLONE_DEPTH = 10_000;

const uncloneable = (what: string): never => {
  throw domException('DataCloneError', `${what} could not be cloned.`);
};

function cloneBuffer(v: ArrayBuffer, memory: Map<object, unknown>): ArrayBuffer {
  if (arrayBufferDetached !== undefined && arrayBufferDetached(v)) uncloneable('A detached ArrayBuffer');
  const n = arrayBufferByteLength(v);
  const out = arrayBufferResizable !== undefined && arrayBufferResizable(v)
    ? new ArrayBufferCtor(n, { maxByteLength: arrayBufferMaxByteLength!(v) } as any)
    : new ArrayBufferCtor(n);
  typedArraySet(new Uint8ArrayCtor(out), new Uint8ArrayCtor(v));
  mapSet(memory, v, out);
  return out;
}

/** One container being filled: object/array keys, Map key-value list, or Set items. */
interface Task { src: object; out: any; items: unknown[]; i: number; depth: number; kind: 0 | 1 | 2; key?: unknown }
interface Walk { memory: Map<object, unknown>; stack: Task[] }

function push(w: Walk, src: object, out: object, items: unknown[], depth: number, kind: 0 | 1 | 2): void {
  append(w.stack, { src, out, items, i: 0, depth, kind });
}

function cloneError(v: Error, w: Walk, depth: number): Error {
  const name = (v as { name?: unknown }).name;
  const Ctor = typeof name === 'string' && ObjectHasOwn(errorCtors, name) ? errorCtors[name]! : errorCtors.Error!;
  const out = new Ctor();
  mapSet(w.memory, v, out);
  const message = ObjectGetOwnPropertyDescriptor(v, 'message');
  if (message !== undefined && 'value' in message) ObjectDefineProperty(out, 'message', dataDesc(`${message.value}`, false));
  // V8 keeps the stack (an own accessor in V8 13); a stack that is not a string is dropped.
  const stack = ObjectHasOwn(v, 'stack') ? (v as { stack?: unknown }).stack : undefined;
  ObjectDefineProperty(out, 'stack', dataDesc(typeof stack === 'string' ? stack : undefined, false));
  if (typeof stack !== 'string') delete (out as { stack?: unknown }).stack;
  const cause = ObjectGetOwnPropertyDescriptor(v, 'cause');
  if (cause !== undefined && 'value' in cause) ObjectDefineProperty(out, 'cause', dataDesc(convert(cause.value, w, depth + 1), false));
  return out;
}

/** Clones a leaf, or creates a container's empty copy and queues it to be filled. */
function convert(v: unknown, w: Walk, depth: number): unknown {
  if (typeof v === 'symbol') return uncloneable('A symbol');
  if (typeof v === 'function') return uncloneable('A function');
  if (typeof v !== 'object' || v === null) return v;
  if (mapHas(w.memory, v)) return mapGet(w.memory, v);
  if (depth > MAX_CLONE_DEPTH) throw domException('DataCloneError', `The value is nested deeper than ${MAX_CLONE_DEPTH} levels.`);
  let out: object;
  const tag = typedArrayTag(v);
  if (ArrayIsArray(v)) {
    const arr: unknown[] = [];
    arr.length = (v as unknown[]).length;
    out = arr;
    push(w, v, out, ObjectKeys(v), depth, 0);
  } else if (tag !== undefined) {
    const buf = convert(typedArrayBuffer(v), w, depth + 1) as ArrayBuffer;
    out = new typedArrayCtors[tag]!(buf, typedArrayByteOffset(v), typedArrayLength(v));
  } else if (ArrayBufferIsView(v)) {
    const buf = convert(dataViewBuffer(v), w, depth + 1) as ArrayBuffer;
    out = new DataViewCtor(buf, dataViewByteOffset(v), dataViewByteLength(v));
  } else if (isDOMException(v)) {
    out = new DOMException((v as DOMException).message, (v as DOMException).name);
  } else if (ErrorIsError(v)) {
    return cloneError(v as Error, w, depth);
  } else if (isPlatformObject(v)) {
    return uncloneable('A platform object');
  } else {
    const kind = kindOf(v);
    if (kind === K_BOOLEAN) out = ObjectCtor(booleanValueOf(v));
    else if (kind === K_NUMBER) out = ObjectCtor(numberValueOf(v));
    else if (kind === K_STRING) out = ObjectCtor(stringValueOf(v));
    else if (kind === K_BIGINT) out = ObjectCtor(bigintValueOf(v));
    else if (kind === K_DATE) out = new DateCtor(dateGetTime(v));
    else if (kind === K_REGEXP) out = new RegExpCtor(regExpSource(v), regExpFlags(v));
    else if (kind === K_BUFFER) return cloneBuffer(v as ArrayBuffer, w.memory);
    else if (kind === K_MAP) {
      const items: unknown[] = [];
      mapForEach(v as Map<unknown, unknown>, (value, key) => { append(items, key); append(items, value); });
      out = new MapCtor();
      push(w, v, out, items, depth, 1);
    } else if (kind === K_SET) {
      const items: unknown[] = [];
      setForEach(v as Set<unknown>, (value) => append(items, value));
      out = new SetCtor();
      push(w, v, out, items, depth, 2);
    } else if (kind === K_OBJECT) {
      out = {};
      push(w, v, out, ObjectKeys(v), depth, 0);
    } else {
      return uncloneable(UNCLONEABLE[kind] ?? 'An object');
    }
  }
  mapSet(w.memory, v, out);
  return out;
}

const UNCLONEABLE: Record<number, string> = {
  [K_SYMBOL]: 'A Symbol object', [K_SHARED]: 'A SharedArrayBuffer', [K_WEAK]: 'A weak collection or reference',
  [K_PROMISE]: 'A Promise',
};

/**
 * Deep-copies a value the way `postMessage` would.
 *
 * @example
 * const a = { when: new Date(), tags: new Set(['x']) }; a.self = a;
 * const b = structuredClone(a); b.self === b // true
 */
export function structuredClone(value: unknown, options: unknown = undefined): unknown {
  requireArgs(arguments.length, 1, 'structuredClone');
  const transfer = toDictionary(options, 'structuredClone').transfer;
  if (transfer !== undefined && !(ArrayIsArray(transfer) && transfer.length === 0)) {
    throw domException('DataCloneError', 'structuredClone: the transfer option is not supported in isohost.');
  }
  const w: Walk = { memory: new MapCtor(), stack: [] };
  const root = convert(value, w, 0);
  const stack = w.stack;
  while (stack.length > 0) {
    const t = stack[stack.length - 1]!;
    if (t.i >= t.items.length) {
      stack.length--;
      continue;
    }
    const item = t.items[t.i++];
    if (t.kind === 0) {
      const key = item as string;
      if (!ObjectHasOwn(t.src, key)) continue; // a getter may have deleted it
      const v = (t.src as Record<string, unknown>)[key];
      defineData(t.out, key, convert(v, w, t.depth + 1));
    } else if (t.kind === 2) {
      setAdd(t.out, convert(item, w, t.depth + 1));
    } else if ((t.i & 1) === 1) {
      t.key = convert(item, w, t.depth + 1);
    } else {
      mapSet(t.out, t.key, convert(item, w, t.depth + 1));
    }
  }
  return root;
}
