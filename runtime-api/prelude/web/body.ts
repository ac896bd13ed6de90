/**
 * The Body mixin of Request and Response (https://fetch.spec.whatwg.org/#body-mixin).
 * A body is the bytes already in the isolate plus, for a fetched response whose body
 * was still arriving, a source the rest is pulled from (the host's `fetch.read`, 64 KiB
 * at a time): `arrayBuffer()`, `bytes()`, `text()` and `json()` pull it to the end, and
 * a Response's `body` is a ReadableStream (readable-stream.ts) that pulls one chunk per
 * `read()`. A body is read once.
 *
 * A Request's `body` stays `null` (request bodies are sent whole). `blob()` and
 * `formData()` reject with a TypeError.
 */
import {
  ArrayBufferCtor, arrayBufferByteLength, JSONParse, ObjectDefineProperty, PromiseReject, PromiseResolve, promiseThen,
  typedArrayBuffer, TypeErrorCtor, Uint8ArrayCtor,
} from '../intrinsics.ts';
import { codedError, request } from '../host.ts';
import { isBareJsonValue } from '../json-value.ts';
import { type ReadableStream, streamOf } from './readable-stream.ts';
import {
  append, copyToBuffer, dataViewByteLength, ObjectGetOwnPropertyDescriptor, sharedArrayBufferByteLength, succeeds, typedArraySet,
  typedArrayTag,
} from './saved.ts';
import { bufferSourceBytes, utf8Decode, utf8Encode } from './text-encoding.ts';
import { paramsList } from './url-search-params.ts';
import { serializeUrlencoded } from './urlencoded.ts';
import { toUSVString } from './webidl.ts';

/** The saved `then`, typed: the uncurried intrinsic loses its generics. */
const thenAs = promiseThen as <T>(p: Promise<any>, onFulfilled?: ((v: any) => unknown) | undefined, onRejected?: (e: any) => unknown) => Promise<T>;

/** One body: `bytes` null means no body; `used` is Fetch's "disturbed". */
export interface BodyState {
  /** Bytes in the isolate, not yet read. */
  bytes: ArrayBuffer | null;
  used: boolean;
  /** Where the rest comes from, while more is to come. */
  source?: BodySource | null;
  /** Set while a stream reader holds the body. */
  locked?: boolean;
  /** The body's ReadableStream, once asked for. */
  stream?: ReadableStream;
}

/** The rest of a streamed body. `pull()` resolves with the next chunk, or null at the end; one pull at a time. */
export interface BodySource {
  pull(): Promise<ArrayBuffer | null>;
  cancel(): void;
}

/** The rest of fetched body `id`, read from the host with `fetch.read`. */
export function hostBodySource(id: number): BodySource {
  let ended = false;
  return {
    pull() {
      if (ended) return PromiseResolve(null);
      return thenAs<ArrayBuffer | null>(
        request('fetch.read', { body: id }),
        (reply) => {
          if (reply.json !== undefined && reply.json !== null && reply.json.done === true) ended = true;
          const bytes = reply.bytes;
          if (bytes !== undefined && arrayBufferByteLength(bytes) > 0) return bytes;
          return ended ? null : new ArrayBufferCtor(0);
        },
        (err): never => {
          ended = true;
          throw err;
        },
      );
    },
    cancel() {
      if (ended) return;
      ended = true;
      promiseThen(request('fetch.cancel', { body: id }), undefined, () => undefined);
    },
  };
}

/**
 * Two sources reading one: each chunk pulled is kept for the other branch until it
 * reads it (Streams' tee), so a branch read to the end and one never read hold the
 * whole body in the isolate, as in browsers. Cancelling both cancels the original.
 */
function teeSource(source: BodySource): [BodySource, BodySource] {
  const queues: ArrayBuffer[][] = [[], []];
  const heads = [0, 0];
  const open = [true, true];
  let ended = false;
  let failed = false;
  let failure: unknown;
  let pending: Promise<void> | null = null;
  const fill = (): Promise<void> =>
    (pending ??= thenAs<void>(
      source.pull(),
      (chunk) => {
        pending = null;
        if (chunk === null) ended = true;
        else {
          if (open[0]) append(queues[0]!, chunk);
          if (open[1]) append(queues[1]!, copyToBuffer(new Uint8ArrayCtor(chunk)));
        }
      },
      (err) => {
        pending = null;
        failed = true;
        failure = err;
      },
    ));
  const branch = (i: 0 | 1): BodySource => {
    const pull = (): Promise<ArrayBuffer | null> => {
      const q = queues[i]!;
      if (heads[i]! < q.length) {
        const chunk = q[heads[i]!]!;
        q[heads[i]!] = undefined as unknown as ArrayBuffer;
        heads[i]!++;
        return PromiseResolve(chunk);
      }
      if (failed) return PromiseReject(failure);
      if (ended) return PromiseResolve(null);
      return refill();
    };
    // `await`, not a then-callback returning pull()'s promise (THREATS A2: see readable-stream.ts).
    const refill = async (): Promise<ArrayBuffer | null> => {
      await fill();
      return await pull();
    };
    return {
      pull,
      cancel() {
        open[i] = false;
        queues[i] = [];
        heads[i] = 0;
        if (!open[1 - i]) source.cancel();
      },
    };
  };
  return [branch(0), branch(1)];
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
    const text = serializeUrlencoded(pairs);
    return { bytes: encoded(text), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  }
  // Stricter than WHATWG, which would send "[object Object]" or "1,2": a plain object or
  // array is a JSON value its author meant to send, so it is refused, not reshaped
  // (the rule of json-value.ts; fc.d.ts Json).
  if (isBareJsonValue(init)) throw codedError('invalid_request', 'body: a plain object or array is not a body; send JSON.stringify(value), or use Response.json(value)');
  return { bytes: encoded(toUSVString(init)), type: 'text/plain;charset=UTF-8' };
}

function encoded(s: string): ArrayBuffer {
  return typedArrayBuffer(utf8Encode(s)) as ArrayBuffer;
}

/** A copy for `clone()`: both bodies can then be read, and mutating one read leaves the other alone. */
export function cloneBody(st: BodyState): BodyState {
  if (st.used || st.locked === true) throw new TypeErrorCtor('clone: the body has already been read');
  const bytes = st.bytes === null ? null : copyToBuffer(new Uint8ArrayCtor(st.bytes));
  if (st.source === null || st.source === undefined) return { bytes, used: false };
  // Indexed, not destructured: destructuring runs the array iterator a mini-app can replace (THREATS A2).
  const pair = teeSource(st.source);
  const mine = pair[0];
  const theirs = pair[1];
  st.source = mine;
  return { bytes, used: false, source: theirs };
}

/** Marks the body read and returns all its bytes, pulling what has not arrived yet. */
async function consume(st: BodyState): Promise<ArrayBuffer> {
  if (st.used || st.locked === true) throw new TypeErrorCtor('Body is unusable: the body has already been read');
  if (st.bytes === null) return new ArrayBufferCtor(0);
  st.used = true;
  const first = st.bytes;
  st.bytes = new ArrayBufferCtor(0);
  const source = st.source;
  st.source = null;
  if (source === null || source === undefined) return first;
  const parts: ArrayBuffer[] = [first];
  let total = arrayBufferByteLength(first);
  for (;;) {
    const chunk = await source.pull();
    if (chunk === null) break;
    append(parts, chunk);
    total += arrayBufferByteLength(chunk);
  }
  const out = new Uint8ArrayCtor(total);
  let offset = 0;
  for (let i = 0; i < parts.length; i++) {
    typedArraySet(out, new Uint8ArrayCtor(parts[i]!), offset);
    offset += arrayBufferByteLength(parts[i]!);
    parts[i] = undefined as unknown as ArrayBuffer; // let each chunk go as soon as it is copied
  }
  return typedArrayBuffer(out) as ArrayBuffer;
}

/** The members `defineBodyMembers` adds, for declaration merging with the class. */
export interface BodyMembers {
  readonly body: ReadableStream | null;
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
export function defineBodyMembers(ctor: Function, stateOf: (self: unknown) => BodyState, streams = false): void {
  const members = {
    get body(): ReadableStream | null {
      const st = stateOf(this);
      return streams && st.bytes !== null ? streamOf(st) : null;
    },
    get bodyUsed(): boolean {
      return stateOf(this).used;
    },
    async arrayBuffer(): Promise<ArrayBuffer> {
      return await consume(stateOf(this));
    },
    async bytes(): Promise<Uint8Array> {
      return new Uint8ArrayCtor(await consume(stateOf(this)));
    },
    async text(): Promise<string> {
      return utf8Decode(new Uint8ArrayCtor(await consume(stateOf(this))));
    },
    async json(): Promise<unknown> {
      return JSONParse(utf8Decode(new Uint8ArrayCtor(await consume(stateOf(this)))));
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
