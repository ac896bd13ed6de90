/**
 * `Response.body` as a ReadableStream of bytes — the reading half of
 * https://streams.spec.whatwg.org/ that a fetched body needs: `getReader()` (default
 * readers only), `read()`, `releaseLock()`, `cancel()`, `closed`, `locked` and async
 * iteration (`for await (const chunk of res.body)`). Chunks are `Uint8Array`s of at most
 * 64 KiB, pulled from the host (`fetch.read`) only when the reader asks, so a large body
 * never sits whole on the host. Streams cannot be constructed by mini-apps (there is no
 * `ReadableStream` global) and there are no pipes, tees or BYOB readers; `Response.clone()`
 * tees the body internally (body.ts).
 */
import {
  ArrayBufferCtor, arrayBufferByteLength, PromiseCtor, PromiseReject, PromiseResolve, promiseThen, SymbolAsyncIterator,
  TypeErrorCtor, Uint8ArrayCtor,
} from '../intrinsics.ts';
import type { BodyState } from './body.ts';
import { defineInterface, markPlatformObject, toDictionary } from './webidl.ts';

/** The saved `then`, typed: the uncurried intrinsic loses its generics. */
const thenAs = promiseThen as <T>(p: Promise<any>, onFulfilled?: ((v: any) => unknown) | undefined, onRejected?: (e: any) => unknown) => Promise<T>;

const INTERNAL = {};
const noop = (): void => undefined;

export interface ReadResult {
  value: Uint8Array | undefined;
  done: boolean;
}

/** The next chunk of a body: the bytes already here first, then the source's; null at the end. */
async function nextChunk(st: BodyState): Promise<ArrayBuffer | null> {
  st.used = true; // a read disturbs the body
  const here = st.bytes;
  if (here !== null && arrayBufferByteLength(here) > 0) {
    st.bytes = new ArrayBufferCtor(0);
    return here;
  }
  for (;;) {
    const source = st.source;
    if (source === null || source === undefined) return null;
    const chunk = await source.pull();
    if (chunk === null) {
      st.source = null;
      return null;
    }
    if (arrayBufferByteLength(chunk) > 0) return chunk;
  }
}

/** Stops a body: nothing more is read, and the host closes the connection. */
export function cancelBody(st: BodyState): void {
  st.used = true;
  if (st.bytes !== null) st.bytes = new ArrayBufferCtor(0);
  const source = st.source;
  st.source = null;
  source?.cancel();
}

export class ReadableStreamDefaultReader {
  #st: BodyState | null;
  /** Reads run one after another, in the order they were asked for (Streams: the read request queue). */
  #chain: Promise<unknown> = PromiseResolve(undefined);
  #closed: Promise<undefined>;
  #settleClosed: (error: unknown) => void = noop;

  constructor(key: unknown, st: BodyState) {
    if (key !== INTERNAL) throw new TypeErrorCtor('Illegal constructor: get a reader with response.body.getReader()');
    markPlatformObject(this);
    st.locked = true;
    this.#st = st;
    this.#closed = new PromiseCtor<undefined>((resolve, reject) => {
      this.#settleClosed = (error) => {
        this.#settleClosed = noop;
        if (error === undefined) resolve(undefined);
        else reject(error);
      };
    });
    promiseThen(this.#closed, noop, noop); // a rejection nobody awaits is not an unhandled one
  }

  /** Resolves when the body has been read to its end or cancelled; rejects if reading it failed. */
  get closed(): Promise<undefined> {
    return this.#closed;
  }

  /** The next chunk as `{ value: Uint8Array, done: false }`, or `{ value: undefined, done: true }` at the end. */
  read(): Promise<ReadResult> {
    const st = this.#st;
    if (st === null) return PromiseReject(new TypeErrorCtor('read: the reader has been released'));
    const out = this.#readAfter(this.#chain, st);
    this.#chain = promiseThen(out, noop, noop);
    return out;
  }

  /**
   * `await`s instead of a `then` callback that returns a promise: resolving a promise with
   * a promise looks up `then` on it, which a mini-app may have replaced (THREATS A2).
   */
  async #readAfter(previous: Promise<unknown>, st: BodyState): Promise<ReadResult> {
    await previous;
    let chunk: ArrayBuffer | null;
    try {
      chunk = await nextChunk(st);
    } catch (error) {
      this.#settleClosed(error);
      throw error;
    }
    if (chunk !== null) return { value: new Uint8ArrayCtor(chunk), done: false };
    this.#settleClosed(undefined);
    return { value: undefined, done: true };
  }

  /** Unlocks the stream; a later `read()` on this reader rejects. */
  releaseLock(): void {
    if (this.#st === null) return;
    this.#st.locked = false;
    this.#st = null;
  }

  /** Stops reading: the rest of the body is discarded and its connection closed. */
  cancel(_reason: unknown = undefined): Promise<undefined> {
    const st = this.#st;
    if (st === null) return PromiseReject(new TypeErrorCtor('cancel: the reader has been released'));
    cancelBody(st);
    this.#settleClosed(undefined);
    return PromiseResolve(undefined);
  }
}

export class ReadableStream {
  #st: BodyState;

  constructor(key: unknown = undefined, st: BodyState | undefined = undefined) {
    if (key !== INTERNAL || st === undefined) throw new TypeErrorCtor('ReadableStream cannot be constructed in isohost: response bodies are streams');
    markPlatformObject(this);
    this.#st = st;
  }

  /** True while a reader holds the stream. */
  get locked(): boolean {
    return this.#st.locked === true;
  }

  /** A default reader (the only kind isohost has); throws a TypeError while the stream is locked. */
  getReader(options: unknown = undefined): ReadableStreamDefaultReader {
    if (options !== undefined && toDictionary(options, 'getReader').mode !== undefined) {
      throw new TypeErrorCtor('getReader: only default readers are supported in isohost');
    }
    if (this.#st.locked === true) throw new TypeErrorCtor('getReader: the stream is locked to another reader');
    return new ReadableStreamDefaultReader(INTERNAL, this.#st);
  }

  /** Discards the body (rejects with a TypeError while a reader holds the stream). */
  cancel(_reason: unknown = undefined): Promise<undefined> {
    if (this.#st.locked === true) return PromiseReject(new TypeErrorCtor('cancel: the stream is locked to a reader'));
    cancelBody(this.#st);
    return PromiseResolve(undefined);
  }

  /** Async iteration over the chunks; leaving the loop early cancels the rest of the body. */
  values(_options: unknown = undefined): AsyncIterableIterator<Uint8Array> {
    const reader = this.getReader();
    const iterator = {
      next: (): Promise<IteratorResult<Uint8Array>> =>
        thenAs<IteratorResult<Uint8Array>>(reader.read(), (r) => {
          if (r.done) reader.releaseLock();
          return r as IteratorResult<Uint8Array>;
        }),
      return: (value: unknown = undefined): Promise<IteratorResult<Uint8Array>> => {
        const done = { value: value as Uint8Array, done: true as const };
        return thenAs<IteratorResult<Uint8Array>>(reader.cancel(), () => {
          reader.releaseLock();
          return done;
        });
      },
      [SymbolAsyncIterator]() {
        return iterator;
      },
    };
    return iterator as unknown as AsyncIterableIterator<Uint8Array>;
  }

  [SymbolAsyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.values();
  }
}

/** The stream of a body (one per body, made on first use of `body`). */
export function streamOf(st: BodyState): ReadableStream {
  return (st.stream ??= new ReadableStream(INTERNAL, st));
}

defineInterface(ReadableStream, 'ReadableStream');
defineInterface(ReadableStreamDefaultReader, 'ReadableStreamDefaultReader');
