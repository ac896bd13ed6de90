/**
 * One rule for every value the platform serialises as JSON on a mini-app's behalf
 * (`fc.storage.set`/`batch` values, a method's return value, `Response.json` data): the
 * value must come back from JSON unchanged. `JSON.stringify` alone silently reshapes
 * values — a function property vanishes, a `Map` becomes `{}`, `NaN` becomes `null` — so
 * a mini-app would store or return something other than what it meant. Refused here,
 * with the path inside the value: `value.f: functions cannot be stored`.
 *
 * Accepted: `null`, booleans, strings, finite numbers, arrays (no holes, no `undefined`
 * elements), plain objects (prototype `Object.prototype` or `null`; a property whose
 * value is `undefined` is left out, as reading it gives `undefined` either way) and
 * `Date` (its `toJSON` gives the ISO string, as documented in fc.d.ts). Everything else —
 * functions, symbols, bigints, non-finite numbers, `Map`, `Set`, typed arrays, class
 * instances, boxed primitives, cycles — is a TypeError (code `invalid_request`).
 *
 * Uses only built-ins saved at prelude start (THREATS A2).
 */
import { codedError } from './host.ts';
import { ArrayIsArray, JSONStringify, NumberIsFinite, ObjectGetPrototypeOf, ObjectKeys, RangeErrorCtor, regExpTest } from './intrinsics.ts';
import { dateGetTime, weakSetAdd, WeakSetCtor, weakSetDelete, weakSetHas } from './web/saved.ts';

const ObjectPrototype = ObjectGetPrototypeOf({});
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `what` names the action in messages: "stored", "returned", "sent". */
export type JsonAction = 'stored' | 'returned' | 'sent';

function isDate(value: object): boolean {
  try {
    dateGetTime(value);
    return true;
  } catch {
    return false;
  }
}

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

function fail(path: string, what: string, action: JsonAction): never {
  throw codedError('invalid_request', `${path}: ${what} cannot be ${action} (JSON would not keep them unchanged)`);
}

function walk(value: unknown, path: string, action: JsonAction, ancestors: WeakSet<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!NumberIsFinite(value)) fail(path, `non-finite numbers (${value})`, action);
      return;
    case 'undefined':
      return fail(path, 'undefined values', action);
    case 'function':
      return fail(path, 'functions', action);
    case 'symbol':
      return fail(path, 'symbols', action);
    case 'bigint':
      return fail(path, 'bigints', action);
  }
  if (value === null) return;
  const obj = value as object;
  if (weakSetHas(ancestors, obj)) fail(path, 'cyclic values', action);
  if (ArrayIsArray(obj)) {
    weakSetAdd(ancestors, obj);
    const n = (obj as unknown[]).length;
    for (let i = 0; i < n; i++) walk((obj as unknown[])[i], `${path}[${i}]`, action, ancestors);
    weakSetDelete(ancestors, obj);
    return;
  }
  const proto = ObjectGetPrototypeOf(obj);
  if (proto !== ObjectPrototype && proto !== null) {
    if (isDate(obj)) return;
    fail(path, kindOf(obj), action);
  }
  weakSetAdd(ancestors, obj);
  const keys = ObjectKeys(obj);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = (obj as Record<string, unknown>)[key];
    if (v === undefined) continue;
    walk(v, regExpTest(IDENTIFIER, key) ? `${path}.${key}` : `${path}[${JSONStringify(key)}]`, action, ancestors);
  }
  weakSetDelete(ancestors, obj);
}

/**
 * Throws a TypeError (code `invalid_request`) naming the first path inside `value` that
 * JSON would not carry unchanged; returns normally otherwise.
 *
 * @example
 * checkJsonValue({ f: () => 1 }, 'value', 'stored'); // TypeError: value.f: functions cannot be stored …
 */
export function checkJsonValue(value: unknown, path: string, action: JsonAction): void {
  try {
    walk(value, path, action, new WeakSetCtor());
  } catch (err) {
    // A value nested deeper than the stack allows: the guest's input, not a platform failure.
    if (err instanceof RangeErrorCtor) throw codedError('invalid_request', `${path} is nested too deeply to be ${action}`);
    throw err;
  }
}
