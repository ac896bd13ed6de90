/**
 * The caller inside the proof namespace (`ip netns exec NS node ns-client.ts`): the test
 * process lives outside the namespace and cannot reach its loopback, so it hands this
 * process one request per stdin line and reads one answer per stdout line.
 *
 *   in:  { "id": 1, "method": "POST", "url": "http://127.0.0.1:PORT/…", "headers": {…}, "body": "…" }
 *   out: { "id": 1, "status": 200, "headers": {…}, "body": "…" }   or   { "id": 1, "error": "…" }
 *
 * Every request is bounded by a timeout; the process exits when stdin closes.
 */
import { createInterface } from 'node:readline';

interface Ask {
  id: number;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

function answer(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function handle(ask: Ask): Promise<void> {
  try {
    const res = await fetch(ask.url, {
      method: ask.method,
      headers: ask.headers ?? {},
      ...(ask.body === undefined ? {} : { body: ask.body }),
      signal: AbortSignal.timeout(ask.timeoutMs ?? 15_000),
    });
    answer({ id: ask.id, status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() });
  } catch (err) {
    answer({ id: ask.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  }
}

const inFlight = new Set<Promise<void>>();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const done = handle(JSON.parse(line) as Ask).finally(() => inFlight.delete(done));
  inFlight.add(done);
});
// Idle keep-alive sockets must not hold the process (or serve's shutdown) open.
lines.on('close', () => void Promise.allSettled([...inFlight]).then(() => process.exit(0)));
