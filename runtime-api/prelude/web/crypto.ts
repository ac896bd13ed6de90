/**
 * `crypto.getRandomValues` and `crypto.randomUUID`
 * (https://w3c.github.io/webcrypto/#Crypto-interface), drawing bytes from the host's
 * CSPRNG (`random.bytes`, `random.uuid` in src/sandbox/host-utilities.ts).
 * `crypto.subtle` is not provided.
 */
import { TypeErrorCtor, typedArrayBuffer, typedArrayByteLength, typedArrayByteOffset, Uint8ArrayCtor } from '../intrinsics.ts';
import { hostSync } from '../host.ts';
import { domException } from './dom-exception.ts';
import { typedArraySet, typedArrayTag } from './saved.ts';
import { defineInterface, markPlatformObject, requireArgs } from './webidl.ts';

/** The Web Crypto quota: at most 65,536 bytes per getRandomValues call. */
export const MAX_RANDOM_BYTES = 65536;
const INTEGER_ARRAYS = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'BigInt64Array', 'BigUint64Array'];
const constructing = { token: false };

/** The type of the `crypto` global; not constructible by mini-apps. */
export class Crypto {
  #brand = true;

  static #check(v: unknown): void {
    if (typeof v !== 'object' || v === null || !(#brand in v)) throw new TypeErrorCtor('Illegal invocation');
  }

  constructor() {
    if (!constructing.token) throw new TypeErrorCtor('Illegal constructor');
    markPlatformObject(this);
  }

  /**
   * Fills an integer typed array with cryptographically strong random values and
   * returns it. Float arrays and DataView throw `TypeMismatchError`; more than
   * 65,536 bytes throws `QuotaExceededError`.
   *
   * @example crypto.getRandomValues(new Uint32Array(4))
   */
  getRandomValues<T>(array: T): T {
    requireArgs(arguments.length, 1, 'Crypto.getRandomValues');
    Crypto.#check(this);
    const tag = typedArrayTag(array);
    let ok = false;
    for (let i = 0; i < INTEGER_ARRAYS.length; i++) if (INTEGER_ARRAYS[i] === tag) ok = true;
    if (!ok) throw domException('TypeMismatchError', 'The data argument must be an integer-type TypedArray');
    const n = typedArrayByteLength(array);
    if (n > MAX_RANDOM_BYTES) {
      throw domException('QuotaExceededError', `The ArrayBufferView's byte length (${n}) exceeds the number of bytes of entropy available via this API (${MAX_RANDOM_BYTES})`);
    }
    if (n === 0) return array;
    const bytes = hostSync('random.bytes', { n }) as ArrayBuffer;
    typedArraySet(new Uint8ArrayCtor(typedArrayBuffer(array), typedArrayByteOffset(array), n), new Uint8ArrayCtor(bytes, 0, n));
    return array;
  }

  /** @example crypto.randomUUID() // '36b8f84d-df4e-4d49-b662-bcde71a8764f' */
  randomUUID(): string {
    Crypto.#check(this);
    return hostSync('random.uuid', {}) as string;
  }
}
defineInterface(Crypto, 'Crypto');

/** Makes the one `crypto` object of an isolate. */
export function createCrypto(): Crypto {
  constructing.token = true;
  try {
    return new Crypto();
  } finally {
    constructing.token = false;
  }
}
