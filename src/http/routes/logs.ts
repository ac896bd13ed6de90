/**
 * A tenant's own log stream (issue 12): `GET /v1/tenants/:tenant/logs[?app=ID][&follow=true]`,
 * scope logs:read, NDJSON. The lines come from the tenant's log hub (bindings/log/hub.ts):
 * its mini-apps' log lines and its calls' outcomes, each naming request id, app, version and
 * instance. The hub is reached through the verified caller's TenantContext only, so no
 * query can name another tenant's. Without `follow` the response is the recent lines in
 * the ring; with it, the ring then every new line until the client closes the connection
 * (or the server drains).
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { tenantLogHub } from '../../bindings/log/hub.ts';
import { checkAppId } from '../../apps/registry.ts';
import { callerOf, requireScope } from '../auth.ts';
import type { ServerContext } from '../context.ts';
import { errorResponses, V1_ERRORS } from '../schemas.ts';

/** A follower that reads slower than lines arrive loses lines past this many buffered characters (a gap line says how many). */
const FOLLOW_BUFFER_CHARS = 1024 * 1024;
/** How often a follow stream checks that the server is not draining. */
const DRAIN_CHECK_MS = 500;

export function logRoutes(ctx: ServerContext) {
  const { platform } = ctx;
  const reader = requireScope(ctx.identity, platform.tenants, 'logs:read');
  const followers = new Set<() => void>();

  return async (app: FastifyInstance) => {
    // A follow stream holds its connection open: end them all before the server closes.
    app.addHook('preClose', async () => {
      for (const stop of [...followers]) stop();
    });

    app.get<{ Params: { tenant: string }; Querystring: { app?: string; follow?: boolean } }>(
      '/v1/tenants/:tenant/logs',
      {
        onRequest: reader,
        schema: {
          operationId: 'getTenantLogs',
          summary: 'The tenant\'s mini-app log lines and call outcomes, as NDJSON (live with follow=true)',
          description:
            'One JSON object per line: { time, type: "log" | "call" | "gap", request_id, app, version, instance, level?, msg?, fields?, method?, outcome?, ms? }. ' +
            'The recent lines first (at most 1000 per tenant), then, with follow=true, every new line until the client closes. Only this tenant\'s lines, ever.',
          tags: ['logs'],
          params: { type: 'object', required: ['tenant'], properties: { tenant: { type: 'string', maxLength: 63 } } },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { app: { type: 'string', maxLength: 63, description: 'only this app\'s lines' }, follow: { type: 'boolean', default: false } },
          },
          response: { 200: { description: 'newline-delimited JSON', content: { 'application/x-ndjson': { schema: { type: 'string' } } } }, ...errorResponses(V1_ERRORS) },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const appId = req.query.app === undefined ? undefined : checkAppId(req.query.app);
        const hub = tenantLogHub(caller.tenant);
        const recent = hub.recent(appId);
        void reply.type('application/x-ndjson; charset=utf-8').header('cache-control', 'no-store');
        if (req.query.follow !== true) return reply.send(recent.length === 0 ? '' : recent.join('\n') + '\n');

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
        const unsubscribe = hub.subscribe((text, app) => {
          if (appId === undefined || app === appId) write(text);
        });
        const drainCheck = setInterval(() => {
          if (ctx.draining) stop();
        }, DRAIN_CHECK_MS);
        drainCheck.unref();
        function stop() {
          if (!followers.delete(stop)) return;
          clearInterval(drainCheck);
          unsubscribe();
          // The client went away: drop what is buffered; else (shutdown) end the stream cleanly.
          if (reply.raw.destroyed) out.destroy();
          else out.end();
        }
        followers.add(stop);
        reply.raw.once('close', stop);
        // Node sends the head with the first body bytes; a quiet tenant would leave the client
        // waiting for headers. fastify pipes the stream after writing the head: flush it then.
        reply.raw.once('pipe', () => reply.raw.flushHeaders());
        return reply.send(out);
      },
    );
  };
}
