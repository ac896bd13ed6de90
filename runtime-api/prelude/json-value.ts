/**
 * One rule for every value the platform serialises as JSON on a mini-app's behalf
 * (`fc.storage.set`/`batch` values, a method's return value, `Response.json` data): the
 * value must come back from JSON unchanged. `JSON.stringify` alone silently reshapes
 * values — a function property vanishes, a `Map` becomes `{}`, `NaN` becomes `null` — so
 * a mini-app would store or return something other than what it meant. Refused here,
 * with the path inside the value: `value.f: functions cannot be stored`.
 *
 * The check runs as the replacer of the one `JSON.stringify` that produces the text, so
 * every property is read exactly once (a Proxy or getter that answers differently on a
 * second read cannot pass the check with one value and be stored with another; THREATS
 * A4), and a value's `toJSON` (Date's, documented in fc.d.ts) runs before the check sees
 * its result. Accepted: `null`, booleans, strings, finite numbers, arrays, plain objects
 * (prototype `Object.prototype` or `null`) and whatever `toJSON` turns into those. An
 * object property whose value is `undefined` is left out (reading it gives `undefined`
 * either way); symbol-keyed properties are not data and are not read. Refused: functions,
 * symbols, bigints, non-finite numbers, `undefined` or holes in arrays, and every other
 * object (Map, Set, typed arrays, class instances, boxed primitives).
 *
 * Uses only built-ins saved at prelude start (THREATS A2).
 */
import { codedError } from './host.ts';
import {
  ArrayIsArray, JSONStringify, NumberIsFinite, ObjectGetPrototypeOf, regExpTest, WeakMapCtor, weakMapGet, weakMapSet,
} from './intrinsics.ts';
import { weakSetAdd, WeakSetCtor, weakSetHas } from './web/saved.ts';

const ObjectPrototype = ObjectGetPrototypeOf({});
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** The errors this module threw, so callers can tell a refusal from an error of the value's own code. */
const refusals = new WeakSetCtor<object>();

/** The action named in messages: "stored", "returned", "sent". */
export type JsonAction = 'stored' | 'returned' | 'sent';

function kindOf(value: object): string {
  try {
    const proto = ObjectGetPrototypeOf(value) as { constructor?: { name?: unknown } } | null;
    const name = proto?.constructor?.name;
    if (typeof name === 'string' && name !== '') return `${name} objects`;
  } catch {
    // a hostile getter or Proxy trap: describe it generically
  }
  return 'non-plain objects';
}

/** Why JSON would not carry `value` (in an array when `inArray`) unchanged, or undefined when it would. */
function problemOf(value: unknown, inArray: boolean): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return NumberIsFinite(value) ? undefined : `non-finite numbers (${value})`;
    case 'undefined':
      return inArray ? 'undefined values' : undefined;
    case 'function':
      return 'functions';
    case 'symbol':
      return 'symbols';
    case 'bigint':
      return 'bigints';
  }
  if (value === null || ArrayIsArray(value)) return undefined;
  const proto = ObjectGetPrototypeOf(value);
  return proto === ObjectPrototype || proto === null ? undefined : kindOf(value as object);
}

/**
 * `JSON.stringify(value)`, refusing (TypeError, code `invalid_request`, the path inside
 * the value in its message) what JSON would not carry unchanged. Errors thrown by the
 * value's own getters, traps or `toJSON`, and V8's for a cycle, propagate as they are;
 * tell them apart with isJsonRefusal(). Returns undefined for a top-level `undefined`.
 *
 * @example
 * stringifyChecked({ f: () => 1 }, 'value', 'stored'); // TypeError: value.f: functions cannot be stored …
 */
export function stringifyChecked(value: unknown, path: string, action: JsonAction): string | undefined {
  // Each object's holder and key, set just before JSON.stringify descends into it: the
  // path is built only when something is refused (a call's result passes here every time).
  const links = new WeakMapCtor<object, { holder: object; key: string }>();
  const pathOf = (holder: object, key: string): string => {
    const link = weakMapGet(links, holder);
    if (link === undefined) return path; // the wrapper JSON.stringify puts around the value
    const base = pathOf(link.holder, link.key);
    return ArrayIsArray(holder) ? `${base}[${key}]` : regExpTest(IDENTIFIER, key) ? `${base}.${key}` : `${base}[${JSONStringify(key)}]`;
  };
  function replacer(this: object, key: string, v: unknown): unknown {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return v;
      case 'number':
        if (NumberIsFinite(v)) return v;
        break;
      case 'object':
        if (v === null) return v;
        if (problemOf(v, false) === undefined) {
          weakMapSet(links, v, { holder: this, key });
          return v;
        }
        break;
      case 'undefined':
        // Left out of an object (and a top-level undefined is the caller's to judge); refused in an array.
        if (weakMapGet(links, this) === undefined || !ArrayIsArray(this)) return v;
        break;
    }
    const err = codedError('invalid_request', `${pathOf(this, key)}: ${problemOf(v, true)} cannot be ${action} (JSON would not keep them unchanged)`);
    weakSetAdd(refusals, err);
    throw err;
  }
  return JSONStringify(value, replacer);
}

const objectToString = (ObjectPrototype as { toString: unknown }).toString;

/**
 * True for an array or a plain object (prototype `Object.prototype` or `null`) without a
 * `toString` of its own making: a JSON value that string conversion would turn into
 * "1,2" or "[object Object]".
 */
export function isBareJsonValue(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (ArrayIsArray(value)) return true;
  const proto = ObjectGetPrototypeOf(value);
  if (proto !== ObjectPrototype && proto !== null) return false;
  const toString = (value as { toString?: unknown }).toString;
  return toString === undefined || toString === objectToString;
}

/** True for an error stringifyChecked threw as a refusal (not one of the value's own). */
export function isJsonRefusal(err: unknown): boolean {
  return typeof err === 'object' && err !== null && weakSetHas(refusals, err);
}
