/**
 * Launch, call and end instances (scope apps:call). An instance belongs to the tenant
 * and subject that launched it: under any other tenant or subject it is not_found.
 * Call results are passed through as the JSON text the isolate produced (no re-parse).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { IsohostError } from '../../errors.ts';
import { authenticate, type Caller } from '../auth.ts';
import type { ServerContext } from '../context.ts';

const METHOD_RE = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/;

/**
 * The parsed body as JSON text again. JSON.parse is iterative but JSON.stringify
 * recurses: a 10 KB body nested 5,000 deep overflows the host's stack here, which is
 * the caller's bad input, not a host failure (THREATS B15).
 */
function argsText(body: unknown): string {
  if (body === undefined) return 'null';
  try {
    return JSON.stringify(body);
  } catch {
    throw new IsohostError('invalid_request', 'the JSON arguments are nested too deeply');
  }
}

function checkMethod(method: string): string {
  if (!METHOD_RE.test(method)) throw new IsohostError('invalid_request', 'method must be a JavaScript identifier');
  return method;
}

export function instanceRoutes(ctx: ServerContext) {
  const { platform, metrics } = ctx;
  const limit = { bodyLimit: ctx.maxArgsBytes };

  async function timed(caller: Caller, reply: FastifyReply, work: () => Promise<string>) {
    const end = metrics.latency.startTimer({ tenant: caller.tenant.id });
    try {
      const result = await work();
      metrics.calls.inc({ tenant: caller.tenant.id, code: 'ok' });
      return reply.type('application/json').send(`{"result":${result}}`);
    } catch (err) {
      metrics.calls.inc({ tenant: caller.tenant.id, code: err instanceof IsohostError ? err.code : 'internal' });
      throw err;
    } finally {
      end();
    }
  }

  return async (app: FastifyInstance) => {
    app.post<{ Params: { tenant: string; app: string } }>(
      '/v1/tenants/:tenant/apps/:app/instances',
      { ...limit, schema: { summary: 'Launch an instance of the active version for the caller', tags: ['instances'], response: { 201: { type: 'object', properties: { instance: { type: 'string' }, app: { type: 'string' }, version: { type: 'string' } } } } } },
      async (req, reply) => {
        const caller = await authenticate(req, ctx.identity, platform.tenants, 'apps:call');
        const bundle = await platform.apps.active(caller.tenant, req.params.app);
        const { info } = await platform.host.launch(caller.tenant, bundle, caller.user);
        return reply.status(201).send({ instance: info.id, app: info.app, version: info.version });
      },
    );

    app.post<{ Params: { tenant: string; instance: string; method: string } }>(
      '/v1/tenants/:tenant/instances/:instance/calls/:method',
      { ...limit, schema: { summary: 'Call a method of an instance; body = JSON args', tags: ['instances'], response: { 200: { type: 'object', properties: { result: {} } } } } },
      async (req, reply) => {
        const caller = await authenticate(req, ctx.identity, platform.tenants, 'apps:call');
        const method = checkMethod(req.params.method);
        return timed(caller, reply, () => platform.host.call(caller.tenant, caller.user.sub, req.params.instance, method, argsText(req.body)));
      },
    );

    app.delete<{ Params: { tenant: string; instance: string } }>(
      '/v1/tenants/:tenant/instances/:instance',
      { schema: { summary: 'End an instance', tags: ['instances'] } },
      async (req, reply) => {
        const caller = await authenticate(req, ctx.identity, platform.tenants, 'apps:call');
        platform.host.dispose(caller.tenant, caller.user.sub, req.params.instance);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { tenant: string; app: string; method: string } }>(
      '/v1/tenants/:tenant/apps/:app/calls/:method',
      { ...limit, schema: { summary: 'One-shot call of the active version (reuses an idle instance of the same tenant, subject and version)', tags: ['instances'], response: { 200: { type: 'object', properties: { result: {} } } } } },
      async (req, reply) => {
        const caller = await authenticate(req, ctx.identity, platform.tenants, 'apps:call');
        const method = checkMethod(req.params.method);
        const bundle = await platform.apps.active(caller.tenant, req.params.app);
        return timed(caller, reply, () => ctx.oneShot.call(caller.tenant, bundle, caller.user, method, argsText(req.body)));
      },
    );
  };
}
