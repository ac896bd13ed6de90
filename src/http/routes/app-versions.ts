/**
 * An app's versions and who they serve (issue 12, CONTRACT §4 v0.2): read an app, download a
 * version's bundle, set the rollout (a rollback is a rollout of 100 % to an older version),
 * delete an app (its data only with `?purge=true`) — all scope apps:deploy in the tenant's
 * realm — and approve or reject a pending version, which only a token of the operator realm
 * with scope apps:review may do (operator-auth.ts). Every change writes an audit line.
 */
import type { FastifyInstance } from 'fastify';
import { auditApp } from '../../apps/audit.ts';
import { checkAppId, versionView, type Actor } from '../../apps/registry.ts';
import { IsohostError } from '../../errors.ts';
import { callerOf, requireScope, type Caller } from '../auth.ts';
import type { ServerContext } from '../context.ts';
import { operatorOf, requireOperator } from '../operator-auth.ts';
import { errorResponses, rolloutSchema, V1_ERRORS, versionViewSchema } from '../schemas.ts';

type AppParams = { tenant: string; app: string };
type VersionParams = AppParams & { version: string };

const appParams = {
  type: 'object',
  required: ['tenant', 'app'],
  properties: { tenant: { type: 'string', maxLength: 63 }, app: { type: 'string', maxLength: 63 } },
} as const;
const versionParams = {
  type: 'object',
  required: ['tenant', 'app', 'version'],
  properties: { ...appParams.properties, version: { type: 'string', maxLength: 64 } },
} as const;
const appView = {
  description: 'the app, its versions (upload order) and its rollout',
  type: 'object',
  required: ['app', 'versions', 'rollout'],
  properties: { app: { type: 'string' }, versions: { type: 'array', items: versionViewSchema }, rollout: rolloutSchema },
} as const;
/** Reviews and rollouts take small JSON bodies. */
const SMALL_BODY = 16 * 1024;

/** The tenant's caller as an audit actor: its subject in the tenant's realm. */
function tenantActor(caller: Caller): Actor {
  return { sub: caller.user.sub, realm: caller.tenant.config.identity.realm };
}

export function appVersionRoutes(ctx: ServerContext) {
  const { platform } = ctx;
  const deployer = requireScope(ctx.identity, platform.tenants, 'apps:deploy');
  const reviewer = requireOperator(ctx.identity, platform.tenants, 'apps:review');

  return async (app: FastifyInstance) => {
    app.decorateRequest('operator', null);

    app.get<{ Params: AppParams }>(
      '/v1/tenants/:tenant/apps/:app',
      {
        onRequest: deployer,
        schema: {
          operationId: 'getApp',
          summary: 'An app: its versions with their states, and its rollout',
          tags: ['apps'],
          params: appParams,
          response: { 200: appView, ...errorResponses(V1_ERRORS) },
        },
      },
      async (req) => {
        const caller = callerOf(req);
        const record = await platform.apps.record(caller.tenant, checkAppId(req.params.app));
        if (record === undefined) throw new IsohostError('not_found', `no app "${req.params.app}"`);
        return { app: record.app, versions: record.versions.map(versionView), rollout: record.rollout ?? {} };
      },
    );

    app.get<{ Params: VersionParams }>(
      '/v1/tenants/:tenant/apps/:app/versions/:version/bundle',
      {
        onRequest: deployer,
        schema: {
          operationId: 'getAppBundle',
          summary: 'Download the bundle of one version (any state)',
          tags: ['apps'],
          params: versionParams,
          response: {
            200: { description: 'the bundle, byte for byte as uploaded', content: { 'application/javascript': { schema: { type: 'string' } } } },
            ...errorResponses(V1_ERRORS),
          },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const bundle = await platform.apps.versionBundle(caller.tenant, checkAppId(req.params.app), req.params.version);
        return reply
          .type('application/javascript; charset=utf-8')
          .header('x-isohost-sha256', bundle.sha256)
          .send(Buffer.from(bundle.source, 'utf8'));
      },
    );

    app.put<{ Params: AppParams; Body: { versions: Record<string, number> } }>(
      '/v1/tenants/:tenant/apps/:app/rollout',
      {
        onRequest: deployer,
        bodyLimit: SMALL_BODY,
        schema: {
          operationId: 'setAppRollout',
          summary: 'Share the app\'s callers among approved versions (a rollback: 100 to an older version)',
          description: 'A caller\'s version is chosen by a stable hash of (app, sub): a subject stays on one version while the shares stand. Takes effect for new calls within a second on every node; instances keep the version they were launched with.',
          tags: ['apps'],
          params: appParams,
          body: { type: 'object', required: ['versions'], additionalProperties: false, properties: { versions: rolloutSchema } },
          response: { 200: { description: 'the rollout in force', type: 'object', required: ['app', 'rollout'], properties: { app: { type: 'string' }, rollout: rolloutSchema } }, ...errorResponses(V1_ERRORS, ['payload_too_large', 'unsupported_media_type']) },
        },
      },
      async (req) => {
        const caller = callerOf(req);
        const appId = checkAppId(req.params.app);
        const rollout = await platform.apps.setRollout(caller.tenant, appId, req.body.versions);
        auditApp(caller.tenant, 'rollout', { app: appId, rollout, by: tenantActor(caller) });
        return { app: appId, rollout };
      },
    );

    app.delete<{ Params: AppParams; Querystring: { purge?: boolean } }>(
      '/v1/tenants/:tenant/apps/:app',
      {
        onRequest: deployer,
        schema: {
          operationId: 'deleteApp',
          summary: 'Delete an app: its versions and rollout; its data too only with purge=true',
          tags: ['apps'],
          params: appParams,
          querystring: { type: 'object', additionalProperties: false, properties: { purge: { type: 'boolean', default: false, description: 'also delete the app\'s storage keyspace' } } },
          response: { 204: { description: 'the app is deleted', type: 'null' }, ...errorResponses(V1_ERRORS) },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const appId = checkAppId(req.params.app);
        const purge = req.query.purge === true;
        await platform.apps.remove(caller.tenant, appId, purge);
        auditApp(caller.tenant, 'delete', { app: appId, purge, by: tenantActor(caller) });
        return reply.status(204).send();
      },
    );

    for (const decision of ['approve', 'reject'] as const) {
      app.post<{ Params: VersionParams; Body: { reason?: string } | undefined }>(
        `/v1/tenants/:tenant/apps/:app/versions/:version/${decision}`,
        {
          onRequest: reviewer,
          bodyLimit: SMALL_BODY,
          schema: {
            operationId: decision === 'approve' ? 'approveAppVersion' : 'rejectAppVersion',
            summary: decision === 'approve' ? 'Approve a pending version (operator realm, scope apps:review)' : 'Reject a pending version with a reason (operator realm, scope apps:review)',
            description: 'Only a token of the operator realm (deployment.operator_realm) with scope apps:review; a tenant\'s own token gets 403. An approved version of an app that serves nobody yet takes 100 % of the rollout.',
            tags: ['review'],
            params: versionParams,
            ...(decision === 'reject'
              ? { body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } } } }
              : {}),
            response: { 200: { ...versionViewSchema, description: 'the version after review' }, ...errorResponses(V1_ERRORS, ['payload_too_large', 'unsupported_media_type']) },
          },
        },
        async (req) => {
          const operator = operatorOf(req);
          const appId = checkAppId(req.params.app);
          const by: Actor = { sub: operator.token.sub, realm: operator.realm };
          const reason = decision === 'reject' ? req.body?.reason : undefined;
          const v = await platform.apps.review(operator.tenant, appId, req.params.version, decision === 'approve' ? 'approved' : 'rejected', by, reason);
          auditApp(operator.tenant, decision, { app: appId, version: v.version, sha256: v.sha256, state: v.state!, by, ...(reason === undefined ? {} : { reason }) });
          return versionView(v);
        },
      );
    }
  };
}
