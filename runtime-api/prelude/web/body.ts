/**
 * The Body mixin of Request and Response (https://fetch.spec.whatwg.org/#body-mixin),
 * buffered: a body is one ArrayBuffer, read once by `arrayBuffer()`, `bytes()`,
 * `text()` or `json()`.
 *
 * Streams are not supported: `body` is always `null`, even when there is a body to
 * read with the methods above. `blob()` and `formData()` reject with a TypeError.
 */
import {
  ArrayBufferCtor, arrayBufferByteLength, JSONParse, ObjectDefineProperty, typedArrayBuffer, TypeErrorCtor, Uint8ArrayCtor,
} from '../intrinsics.ts';
import { hostSync } from '../host.ts';
import {
  copyToBuffer, dataViewByteLength, ObjectGetOwnPropertyDescriptor, sharedArrayBufferByteLength, succeeds, typedArrayTag,
} from './saved.ts';
import { bufferSourceBytes, utf8Decode, utf8Encode } from './text-encoding.ts';
import { paramsList } from './url-search-params.ts';
import { toUSVString } from './webidl.ts';

/** One body: `bytes` null means no body; `used` is Fetch's "disturbed". */
export interface BodyState {
  bytes: ArrayBuffer | null;
  used: boolean;
}

/**
 * Fetch's "extract a body" for the BodyInit types isohost supports: string,
 * ArrayBuffer, ArrayBufferView, URLSearchParams; anything else is converted to a
 * string, as Web IDL does for the USVString member of the union.
 */
export function extractBody(init: unknown): { bytes: ArrayBuffer; type: string | null } {
  if (typeof init === 'string') return { bytes: encoded(init), type: 'text/plain;charset=UTF-8' };
  if (typedArrayTag(init) !== undefined || succeeds(dataViewByteLength, init) || succeeds(arrayBufferByteLength, init) ||
    (sharedArrayBufferByteLength !== undefined && succeeds(sharedArrayBufferByteLength, init))) {
    // Copied: the caller may keep writing to (or resize, or detach) its buffer (THREATS A7).
    return { bytes: copyToBuffer(bufferSourceBytes(init, 'body')), type: null };
  }
  if (succeeds(paramsList, init)) {
    const pairs = paramsList(init);
    const text = pairs.length === 0 ? '' : (hostSync('usp.serialize', { pairs }) as string);
    return { bytes: encoded(text), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  }
  return { bytes: encoded(toUSVString(init)), type: 'text/plain;charset=UTF-8' };
}

function encoded(s: string): ArrayBuffer {
  return typedArrayBuffer(utf8Encode(s)) as ArrayBuffer;
}

/** A copy for `clone()`: both bodies can then be read, and mutating one read leaves the other alone. */
export function cloneBody(st: BodyState): BodyState {
  if (st.used) throw new TypeErrorCtor('clone: the body has already been read');
  return { bytes: st.bytes === null ? null : copyToBuffer(new Uint8ArrayCtor(st.bytes)), used: false };
}

/** Marks the body read and returns its bytes (the internal buffer: nothing else holds it). */
function consume(st: BodyState): ArrayBuffer {
  if (st.used) throw new TypeErrorCtor('Body is unusable: the body has already been read');
  if (st.bytes === null) return new ArrayBufferCtor(0);
  st.used = true;
  const bytes = st.bytes;
  st.bytes = new ArrayBufferCtor(0);
  return bytes;
}

/** The members `defineBodyMembers` adds, for declaration merging with the class. */
export interface BodyMembers {
  readonly body: null;
  readonly bodyUsed: boolean;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<any>;
  blob(): Promise<never>;
  formData(): Promise<never>;
}

/**
 * Defines the Body members on a class prototype. `stateOf` brand-checks `this` and
 * throws a TypeError for foreign objects, which the async methods turn into rejections.
 */
export function defineBodyMembers(ctor: Function, stateOf: (self: unknown) => BodyState): void {
  const members = {
    get body(): null {
      stateOf(this);
      return null;
    },
    get bodyUsed(): boolean {
      return stateOf(this).used;
    },
    async arrayBuffer(): Promise<ArrayBuffer> {
      return consume(stateOf(this));
    },
    async bytes(): Promise<Uint8Array> {
      return new Uint8ArrayCtor(consume(stateOf(this)));
    },
    async text(): Promise<string> {
      return utf8Decode(new Uint8ArrayCtor(consume(stateOf(this))));
    },
    async json(): Promise<unknown> {
      return JSONParse(utf8Decode(new Uint8ArrayCtor(consume(stateOf(this)))));
    },
    async blob(): Promise<never> {
      stateOf(this);
      throw new TypeErrorCtor('blob() is not supported in isohost: use arrayBuffer(), bytes() or text()');
    },
    async formData(): Promise<never> {
      stateOf(this);
      throw new TypeErrorCtor('formData() is not supported in isohost: use text() with URLSearchParams');
    },
  };
  const proto = ctor.prototype as object;
  const keys = ['body', 'bodyUsed', 'arrayBuffer', 'bytes', 'text', 'json', 'blob', 'formData'];
  for (let i = 0; i < keys.length; i++) {
    const desc = ObjectGetOwnPropertyDescriptor(members, keys[i]!)!;
    ObjectDefineProperty(proto, keys[i]!, { __proto__: null, ...desc, enumerable: true } as PropertyDescriptor);
  }
}
