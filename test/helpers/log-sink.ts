/**
 * A pino destination that hands the test every line the logger writes, one at a time
 * (pino may write several lines in one chunk).
 *
 * @example
 * const { lines, sink } = jsonLines<{ msg: string }>();
 * const logger = pino({ level: 'info' }, sink);
 */
import { Writable } from 'node:stream';

/** A stream that calls `onLine` with each non-empty line written to it. */
export function lineSink(onLine: (line: string) => void): Writable {
  return new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') onLine(line);
      done();
    },
  });
}

/** The lines written to `sink`, parsed as JSON, in order. */
export function jsonLines<T>(): { lines: T[]; sink: Writable } {
  const lines: T[] = [];
  return { lines, sink: lineSink((line) => lines.push(JSON.parse(line) as T)) };
}
