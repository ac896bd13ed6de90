/**
 * Splits a byte stream into NDJSON lines with a cap on the length of one line, so a file
 * without newlines cannot make the reader buffer it whole (node:readline has no such cap).
 * Each line is decoded as strict UTF-8: a bad byte is a coded error, never U+FFFD.
 */
import { IsohostError } from '../errors.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Yields every line of `chunks` without its `\n` (a last line without one is yielded too;
 * a final `\n` yields nothing after it).
 *
 * @example
 * for await (const line of ndjsonLines(createReadStream(file), 32 * 1024 * 1024)) JSON.parse(line);
 */
export async function* ndjsonLines(chunks: AsyncIterable<Uint8Array>, maxLineBytes: number): AsyncGenerator<string> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let number = 0;
  const take = (last: Uint8Array): string => {
    number++;
    if (pendingBytes + last.byteLength > maxLineBytes) {
      throw new IsohostError('payload_too_large', `line ${number} is longer than ${maxLineBytes} bytes`);
    }
    const bytes = pending.length === 0 ? last : Buffer.concat([...pending, last]);
    pending = [];
    pendingBytes = 0;
    try {
      return utf8.decode(bytes);
    } catch {
      throw new IsohostError('invalid_request', `line ${number} is not valid UTF-8`);
    }
  };
  for await (const chunk of chunks) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      yield take(buf.subarray(start, nl));
      start = nl + 1;
    }
    if (start < buf.byteLength) {
      const rest = buf.subarray(start);
      if (pendingBytes + rest.byteLength > maxLineBytes) {
        throw new IsohostError('payload_too_large', `line ${number + 1} is longer than ${maxLineBytes} bytes`);
      }
      pending.push(rest);
      pendingBytes += rest.byteLength;
    }
  }
  if (pendingBytes > 0) yield take(new Uint8Array(0));
}
