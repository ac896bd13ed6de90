/**
 * The admin API for one app (issue 14): its versions and states, rollout, calls and recent
 * errors with the bundle line each was thrown at; a version's bundle source (read-only text,
 * for review); approve or reject (scope apps:review); change the rollout or roll back (scope
 * apps:rollout). The changes are the lifecycle's own (apps/registry.ts) and write the same
 * audit lines as the tenant-facing routes (app-versions.ts), naming the operator.
 */
import type { FastifyInstance } from 'fastify';
import { auditApp } from '../../apps/audit.ts';
import { checkAppId, versionView, type Actor, type AppRecord } from '../../apps/registry.ts';
import { leadingVersion } from '../../apps/rollout.ts';
import { IsohostError } from '../../errors.ts';
import type { TenantContext } from '../../tenants/context.ts';
import type { ServerContext } from '../context.ts';
import { errorResponses, rolloutSchema, V1_ERRORS, versionViewSchema } from '../schemas.ts';
import { adminOf, requireAdmin, type AdminCaller } from './admin-auth.ts';

type AppParams = { tenant: string; app: string };
type VersionParams = AppParams & { version: string };

const ERRORS = errorResponses(V1_ERRORS);
const BODY_ERRORS = errorResponses(V1_ERRORS, ['payload_too_large', 'unsupported_media_type']);
const SMALL_BODY = 16 * 1024;
/** A source line longer than this is cut (minified bundles have very long lines). */
const SOURCE_LINE_CHARS = 300;

const tenantParams = { type: 'object', required: ['tenant'], properties: { tenant: { type: 'string', maxLength: 63 } } } as const;
const appParams = { type: 'object', required: ['tenant', 'app'], properties: { tenant: { type: 'string', maxLength: 63 }, app: { type: 'string', maxLength: 63 } } } as const;
const versionParams = { type: 'object', required: ['tenant', 'app', 'version'], properties: { ...appParams.properties, version: { type: 'string', maxLength: 64 } } } as const;
const adminVersion = {
  ...versionViewSchema,
  properties: {
    ...versionViewSchema.properties,
    methods: { type: 'array', items: { type: 'string' } },
    share: { type: 'integer', description: 'percent of callers in the rollout (0: serves nobody)' },
    reviewed_by: { type: 'object', nullable: true, properties: { sub: { type: 'string' }, realm: { type: 'string' } } },
    reviewed_at: { type: 'string', nullable: true },
  },
} as const;
/** Calls over a span (stats.ts CallSummary). */
export const summarySchema = {
  type: 'object',
  description: 'calls in the span; latencies in ms (upper bound of a 25 % bin), null without calls',
  properties: { calls: { type: 'integer' }, errors: { type: 'integer' }, breaches: { type: 'integer' }, p50_ms: { type: 'number', nullable: true }, p99_ms: { type: 'number', nullable: true } },
} as const;
/** One point per minute over the last hour (charts). */
export const perMinuteSchema = { type: 'array', items: { ...summarySchema, properties: { ...summarySchema.properties, t: { type: 'integer', description: 'the minute, epoch ms' } } } } as const;
const summary = summarySchema;
const errorRow = {
  type: 'object',
  properties: {
    time: { type: 'string' },
    app: { type: 'string' },
    version: { type: 'string' },
    method: { type: 'string' },
    code: { type: 'string' },
    request_id: { type: 'string' },
    line: { type: 'integer' },
    file: { type: 'string' },
    file_line: { type: 'integer' },
    source: { type: 'string', nullable: true, description: 'the bundle line the error was thrown at' },
  },
} as const;
const appDetail = {
  description: 'the app: versions, rollout, calls over the last hour and recent errors',
  type: 'object',
  properties: {
    tenant: { type: 'string' },
    app: { type: 'string' },
    active: { type: 'string' },
    rollout: rolloutSchema,
    versions: { type: 'array', items: adminVersion },
    last_5m: summary,
    last_60m: summary,
    per_minute: perMinuteSchema,
    errors: { type: 'array', items: errorRow },
  },
} as const;
const rolloutAnswer = { description: 'the rollout in force', type: 'object', properties: { app: { type: 'string' }, rollout: rolloutSchema } } as const;

function actorOf(admin: AdminCaller): Actor {
  return { sub: admin.token.sub, realm: admin.realm };
}

async function recordOf(ctx: ServerContext, tenant: TenantContext, appId: string): Promise<AppRecord> {
  const record = await ctx.platform.apps.record(tenant, checkAppId(appId));
  if (record === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
  return record;
}

function adminVersionOf(record: AppRecord, v: AppRecord['versions'][number]) {
  return {
    ...versionView(v),
    methods: v.methods,
    share: record.rollout?.[v.version] ?? 0,
    reviewed_by: v.reviewed_by ?? null,
    reviewed_at: v.reviewed_at ?? null,
  };
}

/**
 * The version a one-click rollback goes to: the newest approved version uploaded before the
 * one with the largest share now.
 */
function previousApproved(record: AppRecord): string | undefined {
  const order = record.versions.map((v) => v.version);
  const leading = leadingVersion(record.rollout ?? {}, order);
  const at = order.indexOf(leading);
  for (let i = at - 1; i >= 0; i--) if (record.versions[i]!.state === 'approved') return record.versions[i]!.version;
  return undefined;
}

export function adminAppRoutes(ctx: ServerContext) {
  const { platform, metrics } = ctx;
  const reader = requireAdmin(ctx.identity, 'console:read');
  const reviewer = requireAdmin(ctx.identity, 'apps:review');
  const roller = requireAdmin(ctx.identity, 'apps:rollout');

  /** The bundle line of an error (code of the tenant's own app, never its data), cut to SOURCE_LINE_CHARS. */
  async function sourceLine(tenant: TenantContext, app: string, version: string, line: number | undefined): Promise<string | null> {
    if (line === undefined || line < 1) return null;
    try {
      const bundle = await platform.apps.versionBundle(tenant, app, version);
      const text = bundle.source.split('\n', line)[line - 1];
      return text === undefined ? null : text.slice(0, SOURCE_LINE_CHARS);
    } catch {
      return null; // the version was deleted since
    }
  }

  return async (app: FastifyInstance) => {
    app.get<{ Params: { tenant: string } }>(
      '/v1/admin/tenants/:tenant/apps',
      {
        onRequest: reader,
        schema: {
          operationId: 'adminListApps',
          summary: 'A tenant\'s apps with their versions, states and rollouts (scope console:read)',
          tags: ['admin'],
          params: tenantParams,
          response: {
            200: { description: 'the apps', type: 'object', properties: { apps: { type: 'array', items: { type: 'object', properties: { app: { type: 'string' }, active: { type: 'string' }, rollout: rolloutSchema, versions: { type: 'array', items: adminVersion } } } } } },
            ...ERRORS,
          },
        },
      },
      async (req) => {
        const tenant = platform.tenants.get(req.params.tenant);
        const records = await platform.apps.list(tenant);
        return { apps: records.map((r) => ({ app: r.app, active: r.active, rollout: r.rollout ?? {}, versions: r.versions.map((v) => adminVersionOf(r, v)) })) };
      },
    );

    app.get<{ Params: AppParams }>(
      '/v1/admin/tenants/:tenant/apps/:app',
      {
        onRequest: reader,
        schema: { operationId: 'adminGetApp', summary: 'One app: versions and states, rollout, calls and latency over the last hour, recent errors with their bundle lines (scope console:read)', tags: ['admin'], params: appParams, response: { 200: appDetail, ...ERRORS } },
      },
      async (req) => {
        const tenant = platform.tenants.get(req.params.tenant);
        const record = await recordOf(ctx, tenant, req.params.app);
        const errors = await Promise.all(metrics.stats.recentErrors(tenant.id, record.app).map(async (e) => ({ ...e, source: await sourceLine(tenant, e.app, e.version, e.line) })));
        return {
          tenant: tenant.id,
          app: record.app,
          active: record.active,
          rollout: record.rollout ?? {},
          versions: record.versions.map((v) => adminVersionOf(record, v)),
          last_5m: metrics.stats.summary(tenant.id, record.app, 5),
          last_60m: metrics.stats.summary(tenant.id, record.app, 60),
          per_minute: metrics.stats.perMinute(tenant.id, record.app),
          errors,
        };
      },
    );

    app.get<{ Params: VersionParams }>(
      '/v1/admin/tenants/:tenant/apps/:app/versions/:version/source',
      {
        onRequest: reader,
        schema: {
          operationId: 'adminGetVersionSource',
          summary: 'A version\'s bundle source as text, for review (any state; scope console:read)',
          tags: ['admin'],
          params: versionParams,
          response: { 200: { description: 'the bundle as uploaded (UTF-8 text)', content: { 'text/plain': { schema: { type: 'string' } } } }, ...ERRORS },
        },
      },
      async (req, reply) => {
        const tenant = platform.tenants.get(req.params.tenant);
        const bundle = await platform.apps.versionBundle(tenant, checkAppId(req.params.app), req.params.version);
        // text/plain and nosniff: a browser shows it, never runs it.
        return reply.type('text/plain; charset=utf-8').header('x-content-type-options', 'nosniff').header('x-isohost-sha256', bundle.sha256).send(bundle.source);
      },
    );

    for (const decision of ['approve', 'reject'] as const) {
      app.post<{ Params: VersionParams; Body: { reason?: string } | undefined }>(
        `/v1/admin/tenants/:tenant/apps/:app/versions/:version/${decision}`,
        {
          onRequest: reviewer,
          bodyLimit: SMALL_BODY,
          schema: {
            operationId: decision === 'approve' ? 'adminApproveVersion' : 'adminRejectVersion',
            summary: decision === 'approve' ? 'Approve a pending version (scope apps:review)' : 'Reject a pending version with a reason (scope apps:review)',
            description: 'The same review as POST /v1/tenants/{tenant}/apps/{app}/versions/{version}/' + decision + '; an approved version of an app that serves nobody takes 100 %.',
            tags: ['admin'],
            params: versionParams,
            ...(decision === 'reject'
              ? { body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } } } }
              : {}),
            response: { 200: { ...versionViewSchema, description: 'the version after review' }, ...BODY_ERRORS },
          },
        },
        async (req) => {
          const by = actorOf(adminOf(req));
          const tenant = platform.tenants.get(req.params.tenant);
          const appId = checkAppId(req.params.app);
          const reason = decision === 'reject' ? req.body?.reason : undefined;
          const v = await platform.apps.review(tenant, appId, req.params.version, decision === 'approve' ? 'approved' : 'rejected', by, reason);
          auditApp(tenant, decision, { app: appId, version: v.version, sha256: v.sha256, state: v.state!, by, ...(reason === undefined ? {} : { reason }) });
          return versionView(v);
        },
      );
    }

    app.put<{ Params: AppParams; Body: { versions: Record<string, number> } }>(
      '/v1/admin/tenants/:tenant/apps/:app/rollout',
      {
        onRequest: roller,
        bodyLimit: SMALL_BODY,
        schema: {
          operationId: 'adminSetRollout',
          summary: 'Share the app\'s callers among approved versions (scope apps:rollout)',
          tags: ['admin'],
          params: appParams,
          body: { type: 'object', required: ['versions'], additionalProperties: false, properties: { versions: rolloutSchema } },
          response: { 200: rolloutAnswer, ...BODY_ERRORS },
        },
      },
      async (req) => {
        const by = actorOf(adminOf(req));
        const tenant = platform.tenants.get(req.params.tenant);
        const appId = checkAppId(req.params.app);
        const rollout = await platform.apps.setRollout(tenant, appId, req.body.versions);
        auditApp(tenant, 'rollout', { app: appId, rollout, by });
        return { app: appId, rollout };
      },
    );

    app.post<{ Params: AppParams; Body: { version?: string } | undefined }>(
      '/v1/admin/tenants/:tenant/apps/:app/rollback',
      {
        onRequest: roller,
        bodyLimit: SMALL_BODY,
        schema: {
          operationId: 'adminRollback',
          summary: 'Roll back: 100 % to a version, by default the newest approved one uploaded before the leading version (scope apps:rollout)',
          tags: ['admin'],
          params: appParams,
          body: { type: 'object', additionalProperties: false, properties: { version: { type: 'string', maxLength: 64 } } },
          response: { 200: rolloutAnswer, ...BODY_ERRORS },
        },
      },
      async (req) => {
        const by = actorOf(adminOf(req));
        const tenant = platform.tenants.get(req.params.tenant);
        const record = await recordOf(ctx, tenant, req.params.app);
        const target = req.body?.version ?? previousApproved(record);
        if (target === undefined) throw new IsohostError('invalid_request', `app "${record.app}" has no approved version before the one serving now`);
        const rollout = await platform.apps.setRollout(tenant, record.app, { [target]: 100 });
        auditApp(tenant, 'rollout', { app: record.app, rollout, by });
        return { app: record.app, rollout };
      },
    );
  };
}
