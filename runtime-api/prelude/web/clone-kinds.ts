/**
 * Tells structuredClone which built-in an object is, from its internal slots
 * (https://html.spec.whatwg.org/multipage/structured-data.html#structuredserializeinternal).
 *
 * The only slot tests JavaScript offers are methods that throw on the wrong receiver,
 * and a throw costs microseconds. So the prototype chain gives a guess that one
 * (succeeding) check confirms; only objects whose chain does not lead to a built-in
 * prototype, or lies about it, go through every check. One deliberate gap: an exotic
 * object whose prototype was replaced by `Object.prototype` or `null` is cloned as an
 * ordinary object (own enumerable properties) rather than by its slots.
 */
import { arrayBufferByteLength, MapCtor, mapGet, mapSet, ObjectGetPrototypeOf, promiseThen } from '../intrinsics.ts';
import {
  bigintValueOf, booleanValueOf, dateGetTime, mapSize, numberValueOf, regExpSource, setSize,
  sharedArrayBufferByteLength, stringValueOf, succeeds, symbolValueOf, weakMapHas, weakRefDeref, weakSetHas,
} from './saved.ts';

export const K_OBJECT = 0;
export const K_BOOLEAN = 1;
export const K_NUMBER = 2;
export const K_STRING = 3;
export const K_BIGINT = 4;
export const K_SYMBOL = 5;
export const K_DATE = 6;
export const K_REGEXP = 7;
export const K_BUFFER = 8;
export const K_SHARED = 9;
export const K_MAP = 10;
export const K_SET = 11;
export const K_WEAK = 12;
export const K_PROMISE = 13;

const RegExpPrototype = RegExp.prototype;
const noop = (): void => {};
const fail = (): never => {
  throw new TypeError();
};
const g = globalThis as any;

/** One slot check per kind: returns normally only for an object of that kind. */
const CHECKS: ((v: any) => unknown)[] = [
  noop, booleanValueOf, numberValueOf, stringValueOf, bigintValueOf, symbolValueOf, dateGetTime,
  (v) => (v === RegExpPrototype ? fail() : regExpSource(v)),
  arrayBufferByteLength,
  sharedArrayBufferByteLength ?? fail,
  mapSize, setSize,
  (v) => {
    if (!succeeds((x) => weakMapHas(x, {}), v) && !succeeds((x) => weakSetHas(x, {}), v)) (weakRefDeref ?? fail)(v);
  },
  (v) => promiseThen(v, noop, noop),
];

const PROTO_KINDS = new MapCtor<object, number>();
const protoKinds: [unknown, number][] = [
  [g.Object, K_OBJECT], [g.Boolean, K_BOOLEAN], [g.Number, K_NUMBER], [g.String, K_STRING], [g.BigInt, K_BIGINT],
  [g.Symbol, K_SYMBOL], [g.Date, K_DATE], [g.RegExp, K_REGEXP], [g.ArrayBuffer, K_BUFFER], [g.SharedArrayBuffer, K_SHARED],
  [g.Map, K_MAP], [g.Set, K_SET], [g.WeakMap, K_WEAK], [g.WeakSet, K_WEAK], [g.WeakRef, K_WEAK],
  [g.FinalizationRegistry, K_WEAK], [g.Promise, K_PROMISE],
];
for (const [ctor, kind] of protoKinds) if (typeof ctor === 'function') mapSet(PROTO_KINDS, ctor.prototype as object, kind);

/** The kind of an object that is not an array, a view or an error. */
export function kindOf(v: object): number {
  for (let p = ObjectGetPrototypeOf(v); p !== null; p = ObjectGetPrototypeOf(p)) {
    const k = mapGet(PROTO_KINDS, p);
    if (k === undefined) continue;
    if (k === K_OBJECT || succeeds(CHECKS[k]!, v)) return k;
    break;
  }
  const p = ObjectGetPrototypeOf(v);
  if (p === null) return K_OBJECT; // Object.create(null) dictionaries are common: keep them fast
  for (let k = 1; k < CHECKS.length; k++) if (succeeds(CHECKS[k]!, v)) return k;
  return K_OBJECT;
}
