/**
 * A tenant's own log stream (issue 12): `GET /v1/tenants/:tenant/logs[?app=ID][&follow=true]`,
 * scope logs:read, NDJSON. The lines come from the tenant's log hub (bindings/log/hub.ts):
 * its mini-apps' log lines and its calls' outcomes, each naming request id, app, version and
 * instance. The hub is reached through the verified caller's TenantContext only, so no
 * query can name another tenant's. Without `follow` the response is the recent lines in
 * the ring; with it, the ring then every new line until the client closes the connection
 * (or the server drains).
 */
import type { FastifyInstance } from 'fastify';
import { tenantLogHub } from '../../bindings/log/hub.ts';
import { checkAppId } from '../../apps/registry.ts';
import { callerOf, requireScope } from '../auth.ts';
import type { ServerContext } from '../context.ts';
import { logFollowers, sendLogStream } from '../log-stream.ts';
import { errorResponses, V1_ERRORS } from '../schemas.ts';

export function logRoutes(ctx: ServerContext) {
  const { platform } = ctx;
  const reader = requireScope(ctx.identity, platform.tenants, 'logs:read');

  return async (app: FastifyInstance) => {
    const followers = logFollowers(app);

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
        return sendLogStream(reply, { ctx, hub: tenantLogHub(caller.tenant), appId, follow: req.query.follow === true, followers });
      },
    );
  };
}
