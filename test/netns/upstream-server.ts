/**
 * The "outside world" of the netns proof: a tiny HTTP server run in the upstream
 * namespace (`ip netns exec UP node upstream-server.ts HOST`). It prints one JSON line
 * per event on stdout — `{ listening: port }`, `{ connection: n, remote }` and
 * `{ request: n, method, url, headers, remote, nonce }` — so the test can hold every
 * request the isohost box made to it against the proxy's audit and the strace log.
 *
 * Every answer closes its connection, so one request is one TCP connection and the test
 * can count connect() calls exactly. The body carries a fresh nonce: the mini-app's
 * result through the API must hold the very nonce this server sent.
 */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers';

const host = process.argv[2] ?? '127.0.0.1';
let connections = 0;
let requests = 0;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const server = createServer((req, res) => {
  const n = ++requests;
  const nonce = randomUUID();
  const url = new URL(req.url ?? '/', 'http://upstream');
  emit({ request: n, method: req.method, url: req.url, headers: req.headers, remote: req.socket.remoteAddress, nonce });
  // partner-quote reads `/quote?symbol=…`; anything else gets the plain probe answer.
  const body = url.pathname === '/quote' ? { symbol: url.searchParams.get('symbol'), price: 42.5, nonce } : { upstream: 'netns-proof', path: url.pathname, nonce };
  res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify(body));
});
server.on('connection', (socket) => emit({ connection: ++connections, remote: socket.remoteAddress }));
server.keepAliveTimeout = 1;
server.listen(0, host, () => {
  const address = server.address();
  emit({ listening: typeof address === 'object' && address !== null ? address.port : null });
});
// The test ends this process with SIGTERM; a lost parent must not leave it running.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
setTimeout(() => process.exit(3), 120_000).unref();
