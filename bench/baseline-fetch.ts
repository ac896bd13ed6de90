/**
 * `baseline.fetch.direct`: undici from the host to a loopback server, the floor for
 * `call.fetch` (a mini-app fetching the same body through the egress proxy).
 * `startSmallBodyServer` is exported so `call.fetch` hits the very same server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';

/** The small body both fetch benches download (and `baseline.http.fastify` returns). */
export const SMALL_BODY = JSON.stringify({ ok: true, message: 'hello from loopback', n: 42 });

export interface SmallBodyServer {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** `origin` + `/small`, the URL to fetch. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A node:http server on 127.0.0.1 (ephemeral port) answering every request with
 * SMALL_BODY. Plain node:http, not fastify, so the server side costs as little as
 * possible and the bench measures the client path. Keep-alive is node:http's default.
 *
 * @example
 * const server = await startSmallBodyServer();
 * try { await request(server.url) } finally { await server.close() }
 */
export async function startSmallBodyServer(): Promise<SmallBodyServer> {
  const body = Buffer.from(SMALL_BODY);
  const server = createServer((req, res) => {
    // Drain any request body so the socket can be reused for the next request.
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  // Longer than any bench's pause between requests, so the socket is never closed
  // under a measured request (node:http's default is 5 s).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: `${origin}/small`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** Result names this file produces (the runner's `--only` selects by these). */
export const names = ['baseline.fetch.direct'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  if (!ctx.wants('baseline.fetch.direct')) return [];
  const server = await startSmallBodyServer();
  // An own Agent (keep-alive by default) rather than the global dispatcher, so closing
  // it leaves nothing open and no other bench shares its sockets.
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  try {
    const fetchOnce = async (): Promise<string> => {
      const { statusCode, body } = await request(server.url, { dispatcher: agent });
      const text = await body.text();
      if (statusCode !== 200) throw new Error(`small-body server answered ${statusCode}`);
      return text;
    };
    if ((await fetchOnce()) !== SMALL_BODY) throw new Error('small-body server returned a different body');

    // Sequential, like `call.fetch`: the latency of one fetch, body read to the end.
    const samples = await sample(ctx.n(300, 50), ctx.n(3000, 300), async () => {
      const t0 = now();
      await fetchOnce();
      return since(t0);
    });
    return [summarize('baseline.fetch.direct', 'us', samples)];
  } finally {
    await agent.close();
    await server.close();
  }
}
