/**
 * The launch step inside the isolate: run the bundle's top-level code and read its
 * exports, both in one host apply that the host times (CPU and wall), on the isolate's
 * own thread — never on the host's event loop (THREATS F41).
 *
 * The exports object is read by its OWN keys only: a getter a bundle put on
 * `Object.prototype` (or anywhere up the chain) is never reached. Descriptors are
 * inspected with `ObjectHasOwn`, never by reading `d.get`/`d.value` through the chain.
 * An own accessor is read once, here, under the same deadline as the top-level code:
 * the script form (esbuild's ESM → CommonJS) exposes every export as a getter of its
 * live binding, so "accessor" is how an ordinary export looks. What it returns is kept
 * as a data property of a null-prototype object, so no getter runs at call time.
 */
import { JSONStringify, ObjectCreate, ObjectHasOwn, ReflectApply } from './intrinsics.ts';
import { append, ObjectGetOwnPropertyDescriptor, ReflectOwnKeys } from './web/saved.ts';

export interface Loaded {
  /** Methods by name (null prototype, data properties only); undefined when loading failed. */
  readonly ns: Record<string, unknown> | undefined;
  /** `'r' + JSON names` or an error envelope (`'e' + {code, message, line, col}`). */
  readonly envelope: string;
}

/** Runs `main` (the wrapped bundle; returns its exports object) and collects its exported functions. */
export function loadExports(main: () => unknown, errorEnvelope: (err: unknown) => string): Loaded {
  let exported: unknown;
  try {
    exported = main();
  } catch (err) {
    return { ns: undefined, envelope: errorEnvelope(err) };
  }
  try {
    const ns = ObjectCreate(null) as Record<string, unknown>;
    const names: string[] = [];
    if (exported !== null && (typeof exported === 'object' || typeof exported === 'function')) {
      const keys = ReflectOwnKeys(exported as object);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        if (typeof key !== 'string') continue;
        const d = ObjectGetOwnPropertyDescriptor(exported, key);
        if (d === undefined) continue;
        let value: unknown;
        if (ObjectHasOwn(d, 'value')) value = d.value;
        else if (ObjectHasOwn(d, 'get') && typeof d.get === 'function') value = ReflectApply(d.get, exported, []);
        if (typeof value !== 'function') continue;
        ns[key] = value;
        append(names, key);
      }
    }
    // The list is written out, not JSON.stringify'd: an array's `toJSON` is looked up on
    // Array.prototype and Object.prototype, where the top-level code may have put a throwing one.
    let list = '[';
    for (let i = 0; i < names.length; i++) list += (i === 0 ? '' : ',') + JSONStringify(names[i]);
    return { ns, envelope: 'r' + list + ']' };
  } catch (err) {
    return { ns: undefined, envelope: errorEnvelope(err) };
  }
}
