/**
 * Built-ins saved when the prelude is evaluated (at snapshot time, before any
 * mini-app code runs). The prelude uses only these, so a mini-app that replaces
 * `JSON`, `Array.prototype[...]`, `Promise.prototype.then`, `Function.prototype.apply`
 * or `Symbol.species` cannot subvert `fc` (THREATS A2).
 */
/** `f.call` as a plain function: `uncurry(Array.prototype.push)(arr, x)`. */
export const uncurry = <T extends (...args: any[]) => any>(fn: T) =>
  Function.prototype.call.bind(fn) as (self: unknown, ...args: Parameters<T>) => ReturnType<T>;

export const ReflectApply = Reflect.apply;
export const ObjectFreeze = Object.freeze;
export const ObjectCreate = Object.create;
export const ObjectDefineProperty = Object.defineProperty;
export const ObjectDefineProperties = Object.defineProperties;
export const ObjectKeys = Object.keys;
export const ObjectEntries = Object.entries;
export const ObjectGetPrototypeOf = Object.getPrototypeOf;
export const ObjectHasOwn = Object.hasOwn;
export const ObjectAssign = Object.assign;
export const ArrayIsArray = Array.isArray;
export const ArrayFrom = Array.from;
export const JSONParse = JSON.parse;
export const JSONStringify = JSON.stringify;
export const StringCtor = String;
export const NumberCtor = Number;
export const NumberIsInteger = Number.isInteger;
export const NumberIsFinite = Number.isFinite;
export const MathMin = Math.min;
export const MathMax = Math.max;
export const MathFloor = Math.floor;
export const PromiseCtor = Promise;
export const PromiseResolve = Promise.resolve.bind(Promise);
export const PromiseReject = Promise.reject.bind(Promise);
export const promiseThen = uncurry(Promise.prototype.then);
export const ErrorCtor = Error;
export const TypeErrorCtor = TypeError;
export const RangeErrorCtor = RangeError;
export const SymbolCtor = Symbol;
export const SymbolIterator = Symbol.iterator;
export const SymbolAsyncIterator = Symbol.asyncIterator;
export const SymbolToStringTag = Symbol.toStringTag;
export const MapCtor = Map;
export const mapGet = uncurry(Map.prototype.get);
export const mapSet = uncurry(Map.prototype.set);
export const mapClear = uncurry(Map.prototype.clear);
export const mapHas = uncurry(Map.prototype.has);
export const mapDelete = uncurry(Map.prototype.delete);
export const WeakMapCtor = WeakMap;
export const weakMapGet = uncurry(WeakMap.prototype.get);
export const weakMapSet = uncurry(WeakMap.prototype.set);
export const weakMapHas = uncurry(WeakMap.prototype.has);
export const ArrayBufferCtor = ArrayBuffer;
export const ArrayBufferIsView = ArrayBuffer.isView;
export const arrayBufferSlice = uncurry(ArrayBuffer.prototype.slice);
export const arrayBufferByteLength = uncurry(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!) as (self: unknown) => number;
export const Uint8ArrayCtor = Uint8Array;
export const typedArrayBuffer = uncurry(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'buffer')!.get!) as (self: unknown) => ArrayBufferLike;
export const typedArrayByteOffset = uncurry(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'byteOffset')!.get!) as (self: unknown) => number;
export const typedArrayByteLength = uncurry(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'byteLength')!.get!) as (self: unknown) => number;
export const arrayPush = uncurry(Array.prototype.push);
export const arrayJoin = uncurry(Array.prototype.join);
export const arraySlice = uncurry(Array.prototype.slice);
export const stringSlice = uncurry(String.prototype.slice);
export const stringToLowerCase = uncurry(String.prototype.toLowerCase);
export const stringIndexOf = uncurry(String.prototype.indexOf);
export const stringSplit = uncurry(String.prototype.split);
export const stringTrim = uncurry(String.prototype.trim);
export const stringCharCodeAt = uncurry(String.prototype.charCodeAt);
export const stringReplace = uncurry(String.prototype.replace);
export const regExpExec = uncurry(RegExp.prototype.exec);
/**
 * `re.test(s)` through the saved `exec`: the built-in `test` looks `exec` up on the regexp
 * (RegExpExec, ECMA-262 §22.2.7.1), where a mini-app can have replaced it on RegExp.prototype.
 */
export const regExpTest = (re: RegExp, s: string): boolean => regExpExec(re, s) !== null;
export const StringFromCharCode = String.fromCharCode;
export const DateNow = Date.now;

