/**
 * More built-ins saved at prelude start, beyond `../intrinsics.ts`, for the web
 * globals. Same rule (THREATS A2): code a mini-app can reach calls only these.
 *
 * A caution these helpers encode: `Array.prototype.push` and `arr[arr.length] = v`
 * both go through [[Set]], which runs a setter a mini-app defined on
 * `Array.prototype[n]`. `append()` defines the element instead, and every descriptor
 * literal has a null prototype so `Object.prototype.get` cannot turn it into an accessor.
 */
import {
  MathMin, ObjectDefineProperty, ObjectGetPrototypeOf, ReflectApply, StringFromCharCode, typedArrayBuffer,
  typedArrayByteOffset, Uint8ArrayCtor, uncurry,
} from '../intrinsics.ts';
const getter = (proto: object, key: PropertyKey) =>
  Function.prototype.call.bind(Object.getOwnPropertyDescriptor(proto, key)!.get!) as (self: unknown) => any;

export const ReflectOwnKeys = Reflect.ownKeys;
export const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
export const ErrorIsError: (v: unknown) => boolean =
  (Error as any).isError ?? ((v: unknown) => v instanceof Error);
export const ErrorCaptureStackTrace: ((o: object, f?: Function) => void) | undefined = (Error as any).captureStackTrace;
export const IteratorPrototype: object = ObjectGetPrototypeOf(ObjectGetPrototypeOf([][Symbol.iterator]()));

export const stringToWellFormed = uncurry(String.prototype.toWellFormed);
export const stringToUpperCase = uncurry(String.prototype.toUpperCase);
export const arraySort = uncurry(Array.prototype.sort);

export const WeakSetCtor = WeakSet;
export const weakSetAdd = uncurry(WeakSet.prototype.add);
export const weakSetHas = uncurry(WeakSet.prototype.has);
export const SetCtor = Set;
export const setAdd = uncurry(Set.prototype.add);
export const setForEach = uncurry(Set.prototype.forEach);
export const setSize = getter(Set.prototype, 'size') as (s: unknown) => number;
export const mapForEach = uncurry(Map.prototype.forEach);
export const mapSize = getter(Map.prototype, 'size') as (m: unknown) => number;

export const DateCtor = Date;
export const dateGetTime = uncurry(Date.prototype.getTime);
export const RegExpCtor = RegExp;
export const regExpSource = getter(RegExp.prototype, 'source') as (r: unknown) => string;
export const regExpFlags = getter(RegExp.prototype, 'flags') as (r: unknown) => string;
export const booleanValueOf = uncurry(Boolean.prototype.valueOf);
export const numberValueOf = uncurry(Number.prototype.valueOf);
export const stringValueOf = uncurry(String.prototype.valueOf);
export const bigintValueOf = uncurry(BigInt.prototype.valueOf);
export const symbolValueOf = uncurry(Symbol.prototype.valueOf);
export const ObjectCtor = Object;
/** The error constructors structuredClone may recreate (HTML's list), as they were at start-up. */
export const errorCtors: Record<string, new (message?: string) => Error> = {
  __proto__: null, Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
} as any;
export { weakMapHas } from '../intrinsics.ts';
export const weakRefDeref = typeof WeakRef === 'function' ? uncurry(WeakRef.prototype.deref) : undefined;

const TypedArrayProto = ObjectGetPrototypeOf(Uint8Array.prototype);
/** The typed-array kind (`"Uint8Array"`…) of a value, or undefined if it is not one. */
export const typedArrayTag = getter(TypedArrayProto, Symbol.toStringTag) as (v: unknown) => string | undefined;
export const typedArrayLength = getter(TypedArrayProto, 'length') as (v: unknown) => number;
export const typedArraySet = uncurry(TypedArrayProto.set as (src: ArrayLike<number>, offset?: number) => void);
export const Uint16ArrayCtor = Uint16Array;
/** Typed-array constructors by tag, as they were at start-up. */
export const typedArrayCtors: Record<string, new (b: ArrayBuffer, o: number, l: number) => ArrayBufferView> = { __proto__: null } as any;
for (const name of ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']) {
  const ctor = (globalThis as any)[name];
  if (typeof ctor === 'function') typedArrayCtors[name] = ctor;
}

export const DataViewCtor = DataView;
export const dataViewBuffer = getter(DataView.prototype, 'buffer') as (v: unknown) => ArrayBuffer;
export const dataViewByteOffset = getter(DataView.prototype, 'byteOffset') as (v: unknown) => number;
export const dataViewByteLength = getter(DataView.prototype, 'byteLength') as (v: unknown) => number;
const abDesc = (key: string) => {
  const d = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, key);
  return d?.get ? (Function.prototype.call.bind(d.get) as (v: unknown) => any) : undefined;
};
export const arrayBufferResizable = abDesc('resizable');
export const arrayBufferMaxByteLength = abDesc('maxByteLength');
export const arrayBufferDetached = abDesc('detached');
/** SharedArrayBuffer is absent in a bare isolate (FINDINGS: webidl-conversions trips on it). */
export const sharedArrayBufferByteLength = typeof SharedArrayBuffer === 'function'
  ? getter(SharedArrayBuffer.prototype, 'byteLength') as (v: unknown) => number
  : undefined;

/** A data-property descriptor immune to `Object.prototype.get`/`set`/`value` poisoning. */
export function dataDesc(value: unknown, enumerable = true, writable = true): PropertyDescriptor {
  return { __proto__: null, value, writable, enumerable, configurable: true } as PropertyDescriptor;
}

// One reused descriptor: allocating a null-prototype literal per property is slow in V8,
// and nothing between filling it and using it can run guest code (targets are our own objects).
const SHARED_DESC = dataDesc(undefined);

/** Defines an own, enumerable, writable data property on an object we created. */
export function defineData(target: object, key: PropertyKey, value: unknown): void {
  SHARED_DESC.value = value;
  ObjectDefineProperty(target, key, SHARED_DESC);
  SHARED_DESC.value = undefined;
}

/** Appends to an array we own without running setters inherited from `Array.prototype`. */
export function append<T>(list: T[], value: T): void {
  defineData(list, list.length, value);
}

/** Calls `fn` without throwing, for brand detection: true when it returned normally. */
export function succeeds(fn: (v: any) => unknown, value: unknown): boolean {
  try {
    fn(value);
    return true;
  } catch {
    return false;
  }
}

const CHUNK = 8192;
/**
 * Turns code units held in a Uint8Array (Latin-1) or Uint16Array (UTF-16) into a
 * string, in chunks small enough for `String.fromCharCode` arguments. Each chunk gets
 * an own `length`, so a poisoned %TypedArray%.prototype.length getter is never read.
 */
export function codeUnitsToString(units: Uint8Array | Uint16Array, count: number): string {
  const wide = typedArrayTag(units) === 'Uint16Array';
  const buf = typedArrayBuffer(units);
  const off = typedArrayByteOffset(units);
  let out = '';
  for (let i = 0; i < count; i += CHUNK) {
    const len = MathMin(CHUNK, count - i);
    const view = wide ? new Uint16ArrayCtor(buf, off + i * 2, len) : new Uint8ArrayCtor(buf, off + i, len);
    ObjectDefineProperty(view, 'length', dataDesc(len));
    out += ReflectApply(StringFromCharCode, undefined, view as unknown as number[]);
  }
  return out;
}

/** A fresh, fixed-length ArrayBuffer holding a copy of the bytes `view` shows. */
export function copyToBuffer(view: Uint8Array): ArrayBuffer {
  const out = new Uint8ArrayCtor(typedArrayLength(view));
  typedArraySet(out, view);
  return typedArrayBuffer(out) as ArrayBuffer;
}
