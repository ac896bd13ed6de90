/**
 * A fetched response body handed to the guest a chunk at a time (issue 10, deliverable
 * 4; THREATS F44: host-side fetch buffers). The host never holds a whole body: undici's
 * body stream keeps at most its high-water mark (64 KiB) buffered and pauses the socket
 * past it, and each `fetch.read` from the guest takes at most CHUNK_BYTES of what is
 * buffered. `fetch_response_mb` still caps the total; a body over it ends with
 * `resource_exhausted`. A body the guest never reads is cancelled when its call ends
 * (the fetch's abort signal destroys it, which closes the connection upstream).
 */
import type { Readable } from 'node:stream';
import { IsohostError } from '../../errors.ts';

/** The most one chunk carries into the isolate (one `fetch.read` reply). */
export const CHUNK_BYTES = 64 * 1024;

/** One read: up to CHUNK_BYTES, and whether the body has ended with it. */
export interface BodyChunk {
  bytes: Buffer;
  done: boolean;
}

const EMPTY = Buffer.alloc(0);

export class ResponseBodyStream {
  readonly #body: Readable;
  readonly #maxBytes: number;
  readonly #tooBig: () => IsohostError;
  readonly #broken: () => IsohostError;
  readonly #onEnd: () => void;
  #total = 0;
  #error: IsohostError | undefined;
  #ended = false;
  #reading = false;
  /** The most bytes the host held buffered for this body at once (for tests and logs). */
  peakBuffered = 0;

  /**
   * @param onEnd called once when the body is finished: read to its end, failed or cancelled.
   */
  constructor(body: Readable, options: { maxBytes: number; tooBig: () => IsohostError; broken: () => IsohostError; onEnd: () => void }) {
    this.#body = body;
    this.#maxBytes = options.maxBytes;
    this.#tooBig = options.tooBig;
    this.#broken = options.broken;
    this.#onEnd = options.onEnd;
    // Without a listener an upstream reset would be an uncaught 'error'.
    body.on('error', () => this.#fail(this.#broken()));
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes handed to the guest so far. */
  get bytesRead(): number {
    return this.#total;
  }

  /** What is buffered right now, without waiting (the first chunk, sent with the response head). */
  takeBuffered(): BodyChunk {
    if (this.#error) throw this.#error;
    if (this.#ended) return { bytes: EMPTY, done: true };
    const buffered = this.#body.readableLength;
    if (buffered > this.peakBuffered) this.peakBuffered = buffered;
    const n = Math.min(CHUNK_BYTES, buffered);
    const bytes = n > 0 ? ((this.#body.read(n) as Buffer | null) ?? EMPTY) : EMPTY;
    this.#total += bytes.length;
    if (this.#total > this.#maxBytes) this.#fail(this.#tooBig());
    if (this.#error) throw this.#error;
    // undici's body has no public "ended but not yet emitted 'end'"; Node's stream state
    // says it once the last byte is buffered, which saves small bodies a second round trip.
    const state = (this.#body as unknown as { _readableState?: { ended?: boolean } })._readableState;
    if (this.#body.readableLength === 0 && (state?.ended === true || this.#body.readableEnded)) this.#finish();
    return { bytes, done: this.#ended };
  }

  /** The next chunk: waits while nothing is buffered. One read at a time. */
  async read(): Promise<BodyChunk> {
    if (this.#reading) throw new IsohostError('invalid_request', 'fc.fetch: a read of this body is already pending');
    this.#reading = true;
    try {
      for (;;) {
        const chunk = this.takeBuffered();
        if (chunk.bytes.length > 0 || chunk.done) return chunk;
        await this.#readable();
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Stops the body: the connection is closed and nothing more is read. Idempotent. */
  cancel(): void {
    if (this.#ended) return;
    this.#body.destroy();
    this.#finish();
  }

  /** Resolves when the body has data, has ended, or failed. */
  #readable(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#body.off('readable', done).off('end', done).off('close', done).off('error', done);
        resolve();
      };
      this.#body.on('readable', done).on('end', done).on('close', done).on('error', done);
    }).then(() => {
      if (this.#ended || this.#error) return;
      // Closed without 'end': aborted (the call ended, its deadline passed) or reset.
      if (this.#body.destroyed && this.#body.readableLength === 0 && !this.#body.readableEnded) this.#fail(this.#broken());
    });
  }

  #fail(err: IsohostError): void {
    if (this.#error || this.#ended) return;
    this.#error = err;
    this.#body.destroy();
    this.#finish();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
  }
}
