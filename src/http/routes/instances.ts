/**
 * Launch, call and end instances (scope apps:call). An instance belongs to the tenant
 * and subject that launched it: under any other tenant or subject it is not_found.
 * Call results are passed through as the JSON text the isolate produced (no re-parse).
 * On a PostgreSQL platform an instance of another node is reached through that node (forward.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { LRUCache } from 'lru-cache';
import { tenantLogHub } from '../../bindings/log/hub.ts';
import { IsohostError } from '../../errors.ts';
import { callerOf, requireScope, type Caller } from '../auth.ts';
import { createForwarder } from '../forward.ts';
import type { ServerContext } from '../context.ts';
import { BODY_ERRORS, CALL_ERRORS, callResult, errorResponses, jsonArgs, V1_ERRORS } from '../schemas.ts';

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

let isoSecond = NaN;
let isoPrefix = '';
/**
 * The current time as ISO 8601 text; the date and time up to the second are formatted once
 * per second (toISOString costs ~0.7 µs, and every call's outcome line carries the time).
 */
function isoNow(): string {
  const now = Date.now();
  const ms = now % 1000;
  if (now - ms !== isoSecond) {
    isoSecond = now - ms;
    isoPrefix = new Date(isoSecond).toISOString().slice(0, -4); // without "000Z"
  }
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

function checkMethod(method: string): string {
  if (!METHOD_RE.test(method)) throw new IsohostError('invalid_request', 'method must be a JavaScript identifier');
  return method;
}

export function instanceRoutes(ctx: ServerContext) {
  const { platform, metrics } = ctx;
  const limit = { bodyLimit: ctx.maxArgsBytes };
  // Another node's instance: its call or end goes to that node (PostgreSQL platforms, forward.ts).
  const forwarder = createForwarder(platform, metrics.registry);

  /**
   * The app and version of each instance launched here, for the `app` label of its calls and
   * its outcome lines. Bounded: an instance evicted from this map is still callable, its
   * calls then labelled app="".
   */
  const instanceApps = new LRUCache<string, { app: string; version: string }>({ max: 100_000 });

  /** What a call's outcome line names (the tenant's log stream, bindings/log/hub.ts). */
  interface CallTarget {
    app: string;
    version: string;
    /** null for a one-shot call: the host picks the instance. */
    instance: string | null;
    method: string;
    requestId: string;
  }

  /** Runs a call and records its outcome: metrics, the console's stats, the tenant's log line. */
  function timed(caller: Caller, target: CallTarget, reply: FastifyReply, work: () => Promise<string>): Promise<FastifyReply> {
    const t0 = performance.now();
    let running: Promise<string>;
    try {
      running = work();
    } catch (err) {
      running = Promise.reject(err);
    }
    // Plain then, not an async function: one promise fewer per call (bench http.call).
    return running.then(
      (result) => {
        ended(caller, target, 'ok', undefined, t0);
        return reply.type('application/json').send(`{"result":${result}}`);
      },
      (err: unknown) => {
        ended(caller, target, err instanceof IsohostError ? err.code : 'internal', err, t0);
        throw err;
      },
    );
  }

  function ended(caller: Caller, target: CallTarget, outcome: string, failure: unknown, t0: number): void {
    // One clock read for all three records: this runs on every call.
    const ms = performance.now() - t0;
    const tenant = caller.tenant.id;
    metrics.countCall(tenant, target.app, outcome, ms);
    metrics.stats.record({ tenant, app: target.app, version: target.version, method: target.method, outcome, ms, requestId: target.requestId, error: failure });
    tenantLogHub(caller.tenant).publish({
      time: isoNow(),
      type: 'call',
      request_id: target.requestId,
      app: target.app,
      version: target.version,
      instance: target.instance,
      method: target.method,
      outcome,
      ms: Math.round(ms * 1000) / 1000,
    });
  }

  const onRequest = requireScope(ctx.identity, platform.tenants, 'apps:call');
  const instanceCreated = { description: 'the new instance', type: 'object', properties: { instance: { type: 'string' }, app: { type: 'string' }, version: { type: 'string' } } };
  // The JSON args body: documented for OpenAPI; parsed (and refused when not JSON) by fastify's JSON parser.
  const args = { consumes: ['application/json'], 'x-body': jsonArgs };

  return async (app: FastifyInstance) => {
    // Call routes take application/json only: fastify's default text/plain parser would hand a string to the mini-app.
    app.removeContentTypeParser('text/plain');
    app.addHook('onClose', async () => forwarder.close());

    app.post<{ Params: { tenant: string; app: string } }>(
      '/v1/tenants/:tenant/apps/:app/instances',
      {
        ...limit,
        onRequest,
        schema: {
          operationId: 'launchInstance',
          summary: 'Launch an instance of the caller\'s version (the rollout, by a stable hash of app and subject)',
          tags: ['instances'],
          response: { 201: instanceCreated, ...errorResponses(V1_ERRORS, BODY_ERRORS, CALL_ERRORS) },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const bundle = await platform.apps.active(caller.tenant, req.params.app, caller.user.sub);
        const { info } = await platform.host.launch(caller.tenant, bundle, caller.user);
        instanceApps.set(info.id, { app: info.app, version: info.version });
        return reply.status(201).send({ instance: info.id, app: info.app, version: info.version });
      },
    );

    app.post<{ Params: { tenant: string; instance: string; method: string } }>(
      '/v1/tenants/:tenant/instances/:instance/calls/:method',
      {
        ...limit,
        onRequest,
        schema: {
          operationId: 'callInstance',
          summary: 'Call a method of an instance; body = JSON args',
          tags: ['instances'],
          ...args,
          response: { 200: callResult, ...errorResponses(V1_ERRORS, BODY_ERRORS, CALL_ERRORS) },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const method = checkMethod(req.params.method);
        const instance = req.params.instance;
        const owner = forwarder.remoteOwner(instance, req);
        if (owner !== null) return forwarder.relay(req, reply, owner);
        const known = instanceApps.get(instance);
        const target = { app: known?.app ?? '', version: known?.version ?? '', instance, method, requestId: req.id };
        return timed(caller, target, reply, () => platform.host.call(caller.tenant, caller.user.sub, instance, method, argsText(req.body), req.id));
      },
    );

    app.delete<{ Params: { tenant: string; instance: string } }>(
      '/v1/tenants/:tenant/instances/:instance',
      {
        onRequest,
        schema: {
          operationId: 'endInstance',
          summary: 'End an instance',
          tags: ['instances'],
          response: { 204: { description: 'the instance is ended', type: 'null' }, ...errorResponses(V1_ERRORS) },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const owner = forwarder.remoteOwner(req.params.instance, req);
        if (owner !== null) return forwarder.relay(req, reply, owner);
        platform.host.dispose(caller.tenant, caller.user.sub, req.params.instance);
        instanceApps.delete(req.params.instance);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { tenant: string; app: string; method: string } }>(
      '/v1/tenants/:tenant/apps/:app/calls/:method',
      {
        ...limit,
        onRequest,
        schema: {
          operationId: 'callApp',
          summary: 'One-shot call of the caller\'s version (reuses an idle instance of the same tenant, subject and version)',
          tags: ['instances'],
          ...args,
          response: { 200: callResult, ...errorResponses(V1_ERRORS, BODY_ERRORS, CALL_ERRORS) },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const method = checkMethod(req.params.method);
        const bundle = await platform.apps.active(caller.tenant, req.params.app, caller.user.sub);
        const target = { app: bundle.id, version: bundle.version, instance: null, method, requestId: req.id };
        return timed(caller, target, reply, () => ctx.oneShot.call(caller.tenant, bundle, caller.user, method, argsText(req.body), req.id));
      },
    );
  };
}
