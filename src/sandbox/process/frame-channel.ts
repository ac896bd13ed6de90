/**
 * A message channel over one stream socket (the host's end of a sandbox process's fd 3):
 * each frame is a 4-byte big-endian length, then that many bytes of `v8.serialize`, so
 * ArrayBuffers of fetch bodies cross as they are. This is exactly the frame of Node's IPC
 * in `serialization: 'advanced'` (lib/internal/child_process/serialization.js, typed
 * arrays included), which the sandbox process uses on its end: Node reads and writes
 * its fd 3 on the handle itself, with no stream in between (the host's end came through
 * the spawner as a plain socket, so it cannot be made Node's IPC channel here).
 *
 * The peer may be hostile: a length prefix over `maxFrame` is reported as a violation and
 * the channel is closed before anything is allocated for it; a frame that does not
 * deserialize is a violation too. Whatever a frame holds is still only `unknown` here;
 * the caller's parser (protocol.ts) checks it field by field.
 */
import type { Socket } from 'node:net';
import { DefaultDeserializer, DefaultSerializer } from 'node:v8';

const HEADER_BYTES = 4;
const NO_LENGTH = Buffer.alloc(HEADER_BYTES);
/** Node's IPC tags a host object: a typed array, or a native object sent as a plain copy. */
const VIEW_TAG = 0;
const OBJECT_TAG = 1;

// Node calls these for host objects (typed arrays); @types/node does not declare them.
const baseWrite = (DefaultSerializer.prototype as unknown as { _writeHostObject(o: object): void })._writeHostObject;
const baseRead = (DefaultDeserializer.prototype as unknown as { _readHostObject(): unknown })._readHostObject;

class IpcSerializer extends DefaultSerializer {
  _writeHostObject(object: object): void {
    if (ArrayBuffer.isView(object)) {
      this.writeUint32(VIEW_TAG);
      baseWrite.call(this, object);
      return;
    }
    this.writeUint32(OBJECT_TAG);
    this.writeValue({ ...object });
  }
}

class IpcDeserializer extends DefaultDeserializer {
  _readHostObject(): unknown {
    const tag = this.readUint32();
    if (tag === VIEW_TAG) return baseRead.call(this);
    if (tag === OBJECT_TAG) return this.readValue();
    throw new Error('unknown host object tag');
  }
}

function deserialize(body: Buffer): unknown {
  const d = new IpcDeserializer(body);
  d.readHeader();
  return d.readValue();
}

export interface FrameChannelEvents {
  message(value: unknown): void;
  /** The peer broke the framing; the channel is closed already. */
  violation(what: string): void;
  /** The socket closed (either side, for any reason); called once. */
  close(): void;
}

export class FrameChannel {
  readonly #socket: Socket;
  readonly #maxFrame: number;
  readonly #on: FrameChannelEvents;
  /** Bytes received and not yet parsed. */
  #chunks: Buffer[] = [];
  #have = 0;
  /** Length of the frame whose body is awaited; -1 while its header is. */
  #need = -1;
  #closed = false;

  constructor(socket: Socket, maxFrame: number, on: FrameChannelEvents) {
    this.#socket = socket;
    this.#maxFrame = maxFrame;
    this.#on = on;
    socket.on('data', (d: Buffer) => this.#onData(d));
    // A write to a peer that died fails with EPIPE; the close that follows is what counts.
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one value; a no-op once the channel is closed. */
  send(value: unknown): void {
    if (this.#closed) return;
    // One buffer, header first (room left for it, then filled in): one write, no copy.
    const ser = new IpcSerializer();
    ser.writeRawBytes(NO_LENGTH);
    ser.writeHeader();
    ser.writeValue(value);
    const frame = ser.releaseBuffer();
    frame.writeUInt32BE(frame.length - HEADER_BYTES, 0);
    this.#socket.write(frame);
  }

  /** Closes the socket; the peer sees end of stream. */
  close(): void {
    this.#socket.destroy();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#on.close();
  }

  #onData(d: Buffer): void {
    if (this.#closed) return;
    this.#chunks.push(d);
    this.#have += d.length;
    while (!this.#closed) {
      if (this.#need < 0) {
        if (this.#have < HEADER_BYTES) return;
        const n = this.#take(HEADER_BYTES).readUInt32BE(0);
        if (n > this.#maxFrame) return this.#broken(`a frame of ${n} bytes (at most ${this.#maxFrame})`);
        this.#need = n;
      }
      if (this.#have < this.#need) return;
      const body = this.#take(this.#need);
      this.#need = -1;
      let value: unknown;
      try {
        value = deserialize(body);
      } catch {
        return this.#broken('a frame that does not deserialize');
      }
      this.#on.message(value);
    }
  }

  /** The first n buffered bytes (n ≤ #have); chunks are joined only when a whole frame is there. */
  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#have);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#have -= n;
    return all.subarray(0, n);
  }

  #broken(what: string): void {
    this.#socket.destroy();
    this.#on.violation(what);
    this.#onClose();
  }
}
