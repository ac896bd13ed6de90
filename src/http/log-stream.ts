/**
 * One NDJSON answer for a tenant's log hub, shared by the tenant's own route
 * (`GET /v1/tenants/:tenant/logs`) and the operator's (`GET /v1/admin/tenants/:tenant/logs`,
 * which passes a `view` that withholds message and fields). Without `follow`: the recent
 * lines in the ring. With it: those, then every new line until the client closes or the
 * server drains; a follower that reads slower than lines arrive loses lines past
 * FOLLOW_BUFFER_CHARS and gets a `gap` line saying how many.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TenantLogHub } from '../bindings/log/hub.ts';
import type { ServerContext } from './context.ts';

const FOLLOW_BUFFER_CHARS = 1024 * 1024;
/** How often a follow stream checks that the server is not draining. */
const DRAIN_CHECK_MS = 500;

/** The follow streams of one route plugin, ended before its server closes (they hold connections open). */
export function logFollowers(app: FastifyInstance): Set<() => void> {
  const followers = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const stop of [...followers]) stop();
  });
  return followers;
}

export interface LogStreamOptions {
  ctx: ServerContext;
  hub: TenantLogHub;
  /** Only this app's lines. */
  appId: string | undefined;
  follow: boolean;
  followers: Set<() => void>;
  /** What a reader sees of each line (default: the line as it is). */
  view?: (text: string) => string;
}

export function sendLogStream(reply: FastifyReply, o: LogStreamOptions): FastifyReply {
  const view = o.view ?? ((text: string) => text);
  const recent = o.hub.recent(o.appId).map(view);
  void reply.type('application/x-ndjson; charset=utf-8').header('cache-control', 'no-store');
  if (!o.follow) return reply.send(recent.length === 0 ? '' : recent.join('\n') + '\n');

  const out = new PassThrough();
  let dropped = 0;
  const write = (text: string) => {
    if (out.writableLength > FOLLOW_BUFFER_CHARS) {
      dropped++;
      return;
    }
    if (dropped > 0) {
      out.write(JSON.stringify({ time: new Date().toISOString(), type: 'gap', dropped }) + '\n');
      dropped = 0;
    }
    out.write(text + '\n');
  };
  for (const text of recent) write(text);
  const unsubscribe = o.hub.subscribe((text, app) => {
    if (o.appId === undefined || app === o.appId) write(view(text));
  });
  const drainCheck = setInterval(() => {
    if (o.ctx.draining) stop();
  }, DRAIN_CHECK_MS);
  drainCheck.unref();
  function stop() {
    if (!o.followers.delete(stop)) return;
    clearInterval(drainCheck);
    unsubscribe();
    // The client went away: drop what is buffered; else (shutdown) end the stream cleanly.
    if (reply.raw.destroyed) out.destroy();
    else out.end();
  }
  o.followers.add(stop);
  reply.raw.once('close', stop);
  // Node sends the head with the first body bytes; a quiet tenant would leave the client
  // waiting for headers. fastify pipes the stream after writing the head: flush it then.
  reply.raw.once('pipe', () => reply.raw.flushHeaders());
  return reply.send(out);
}
