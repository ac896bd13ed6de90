/**
 * The admin API (issue 14): what the operator's console shows and does, documented here for
 * scripts too. Operator-realm tokens only (admin-auth.ts). This file: the tenants overview,
 * the review queue across tenants, recent egress decisions, and one tenant's log tail;
 * admin-apps.ts: one app, its bundle source, review, rollout and rollback.
 *
 * Metadata only (issue 14 §3): configuration, counts, latencies, versions, hosts. No route
 * reads a tenant's app data, and none returns a call's arguments or result: the log tail
 * withholds a mini-app's own message and fields (they may carry either), and the error list
 * keeps codes and bundle lines, not messages (stats.ts).
 */
import type { FastifyInstance } from 'fastify';
import { tenantLogHub } from '../../bindings/log/hub.ts';
import { checkAppId } from '../../apps/registry.ts';
import { egressDecisions } from '../../egress/decision-ring.ts';
import type { TenantContext } from '../../tenants/context.ts';
import type { ServerContext } from '../context.ts';
import { errorResponses, V1_ERRORS } from '../schemas.ts';
import { adminAppRoutes, perMinuteSchema, summarySchema as summary } from './admin-apps.ts';
import { requireAdmin } from './admin-auth.ts';
import { logFollowers, sendLogStream } from '../log-stream.ts';

const ERRORS = errorResponses(V1_ERRORS);

const tenantRow = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    realm: { type: 'string' },
    identity_provider: { type: 'string' },
    storage: { type: 'object', properties: { engine: { type: 'string' }, namespace: { type: 'string' }, isolation: { type: 'string' } } },
    compute: { type: 'object', properties: { isolation: { type: 'string', enum: ['shared', 'process'] } } },
    review: { type: 'string', enum: ['none', 'required'] },
    network: { type: 'object', properties: { default: { type: 'string' }, allow: { type: 'array', items: { type: 'string' } } } },
    limits: { type: 'object', additionalProperties: { type: 'number' } },
    live_instances: { type: 'integer' },
    apps: { type: 'integer' },
    app_ids: { type: 'array', items: { type: 'string' }, description: 'the tenant\'s apps' },
    pending_versions: { type: 'integer' },
    last_5m: summary,
    last_60m: summary,
    storage_bytes: { type: 'integer' },
    storage_quota_bytes: { type: 'integer' },
    sandbox: { type: 'object', nullable: true, additionalProperties: true, description: 'compute: process tenants: the sandbox processes\' state and protections (null for shared tenants)' },
    per_minute: perMinuteSchema,
  },
} as const;
const pendingRow = {
  type: 'object',
  properties: {
    tenant: { type: 'string' },
    app: { type: 'string' },
    version: { type: 'string' },
    sha256: { type: 'string' },
    size: { type: 'integer' },
    uploaded_at: { type: 'string' },
    uploaded_by: { type: 'string', nullable: true },
    methods: { type: 'array', items: { type: 'string' } },
  },
} as const;
const decisionRow = {
  type: 'object',
  properties: {
    time: { type: 'string' },
    tenant: { type: 'string', nullable: true },
    app: { type: 'string', nullable: true },
    host: { type: 'string' },
    port: { type: 'integer', nullable: true },
    decision: { type: 'string', enum: ['allow', 'deny', 'error', 'unauthenticated'] },
    rule: { type: 'string', nullable: true },
    reason: { type: 'string', nullable: true },
    ms: { type: 'number' },
  },
} as const;
const tenantParams = { type: 'object', required: ['tenant'], properties: { tenant: { type: 'string', maxLength: 63 } } } as const;

/** A tenant's row of the overview. */
async function tenantRowOf(ctx: ServerContext, t: TenantContext, live: Map<string, number>, sandboxes: Record<string, unknown>) {
  const { platform, metrics } = ctx;
  const c = t.config;
  const records = await platform.apps.list(t);
  return {
    id: t.id,
    realm: c.identity.realm,
    identity_provider: c.identity.provider,
    storage: { engine: platform.config.deployment.storage.engine, namespace: c.storage.namespace, isolation: c.storage.isolation },
    compute: { isolation: c.compute.isolation },
    review: c.review,
    network: { default: c.network.default, allow: [...c.network.allow] },
    limits: { ...t.limits },
    live_instances: live.get(t.id) ?? 0,
    apps: records.length,
    app_ids: records.map((r) => r.app),
    pending_versions: records.reduce((n, r) => n + r.versions.filter((v) => v.state === 'pending').length, 0),
    last_5m: metrics.stats.summary(t.id, undefined, 5),
    last_60m: metrics.stats.summary(t.id, undefined, 60),
    storage_bytes: t.store.usageBytes(),
    storage_quota_bytes: Math.round(t.limits.storage_mb * 1024 * 1024),
    sandbox: sandboxes[t.id] ?? null,
    per_minute: metrics.stats.perMinute(t.id),
  };
}

/** A log line for an operator: a mini-app's own message and fields withheld (they may carry tenant data). */
function metadataOnly(text: string): string {
  const line = JSON.parse(text) as Record<string, unknown>;
  if (line.type !== 'log') return text;
  const { msg, fields, ...rest } = line;
  return JSON.stringify({ ...rest, withheld: ['msg', 'fields'], msg_chars: typeof msg === 'string' ? msg.length : 0 });
}

export function adminRoutes(ctx: ServerContext) {
  const { platform } = ctx;
  const reader = requireAdmin(ctx.identity, 'console:read');

  return async (app: FastifyInstance) => {
    app.decorateRequest('admin', null);
    const followers = logFollowers(app);

    app.get(
      '/v1/admin/tenants',
      {
        onRequest: reader,
        schema: {
          operationId: 'adminListTenants',
          summary: 'Every tenant: isolation, realm, allowlist, limits, live instances, calls and errors (5 and 60 min), p50/p99, storage against quota, breaches, sandbox health (scope console:read)',
          tags: ['admin'],
          response: { 200: { description: 'the tenants overview', type: 'object', properties: { node: { type: 'string' }, time: { type: 'string' }, tenants: { type: 'array', items: tenantRow } } }, ...ERRORS },
        },
      },
      async () => {
        const live = platform.host.liveByTenant();
        const sandboxes = platform.sandboxes.status() as Record<string, unknown>;
        const tenants = await Promise.all(platform.tenants.all().map((t) => tenantRowOf(ctx, t, live, sandboxes)));
        return { node: platform.nodeId, time: new Date().toISOString(), tenants };
      },
    );

    app.get(
      '/v1/admin/review',
      {
        onRequest: reader,
        schema: {
          operationId: 'adminReviewQueue',
          summary: 'Pending versions across tenants, oldest first (scope console:read)',
          tags: ['admin'],
          response: { 200: { description: 'the review queue', type: 'object', properties: { pending: { type: 'array', items: pendingRow } } }, ...ERRORS },
        },
      },
      async () => {
        const pending = [];
        for (const t of platform.tenants.all()) {
          for (const r of await platform.apps.list(t)) {
            for (const v of r.versions) {
              if (v.state !== 'pending') continue;
              pending.push({ tenant: t.id, app: r.app, version: v.version, sha256: v.sha256, size: v.size, uploaded_at: v.created_at, uploaded_by: v.uploaded_by ?? null, methods: v.methods });
            }
          }
        }
        pending.sort((a, b) => (a.uploaded_at < b.uploaded_at ? -1 : a.uploaded_at > b.uploaded_at ? 1 : 0));
        return { pending };
      },
    );

    app.get<{ Querystring: { tenant?: string; limit?: number } }>(
      '/v1/admin/egress',
      {
        onRequest: reader,
        schema: {
          operationId: 'adminEgressDecisions',
          summary: 'Recent egress decisions of this node\'s in-process proxy, newest first: host, port, verdict, rule, reason (scope console:read)',
          description: 'At most 200 per tenant are kept. An external egress proxy is another process: its decisions are in its logs and metrics.',
          tags: ['admin'],
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { tenant: { type: 'string', maxLength: 63, description: 'only this tenant\'s decisions' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
          },
          response: { 200: { description: 'the decisions', type: 'object', properties: { decisions: { type: 'array', items: decisionRow } } }, ...ERRORS },
        },
      },
      async (req) => {
        if (req.query.tenant !== undefined) platform.tenants.get(req.query.tenant);
        return { decisions: egressDecisions(ctx.metrics.registry).recent(req.query.tenant, req.query.limit ?? 200) };
      },
    );

    app.get<{ Params: { tenant: string }; Querystring: { app?: string; follow?: boolean } }>(
      '/v1/admin/tenants/:tenant/logs',
      {
        onRequest: reader,
        schema: {
          operationId: 'adminTenantLogs',
          summary: 'One tenant\'s log stream as NDJSON, metadata only (live with follow=true; scope console:read)',
          description: 'The lines of GET /v1/tenants/{tenant}/logs, except that a mini-app log line carries no msg or fields (withheld: they may hold tenant data), only msg_chars.',
          tags: ['admin'],
          params: tenantParams,
          querystring: { type: 'object', additionalProperties: false, properties: { app: { type: 'string', maxLength: 63 }, follow: { type: 'boolean', default: false } } },
          response: { 200: { description: 'newline-delimited JSON', content: { 'application/x-ndjson': { schema: { type: 'string' } } } }, ...ERRORS },
        },
      },
      async (req, reply) => {
        const tenant = platform.tenants.get(req.params.tenant);
        const appId = req.query.app === undefined ? undefined : checkAppId(req.query.app);
        return sendLogStream(reply, { ctx, hub: tenantLogHub(tenant), appId, follow: req.query.follow === true, followers, view: metadataOnly });
      },
    );

    await app.register(adminAppRoutes(ctx));
  };
}
