/**
 * Upload and list mini-app bundles (scope apps:deploy). An upload is `approved` and takes
 * 100 % of the rollout at once, unless the tenant has `review: required`: then it is
 * `pending` and serves nobody until an operator approves it (app-versions.ts).
 */
import type { FastifyInstance } from 'fastify';
import { auditApp } from '../../apps/audit.ts';
import { readBundle } from '../../apps/bundle.ts';
import { checkBundleRules } from '../../apps/bundle-rules.ts';
import { checkAppId } from '../../apps/registry.ts';
import { validateBundle } from '../../apps/validate.ts';
import { callerOf, requireScope } from '../auth.ts';
import type { ServerContext } from '../context.ts';
import { BODY_ERRORS, errorResponses, rolloutSchema, V1_ERRORS } from '../schemas.ts';

const tenantApp = { type: 'object', properties: { tenant: { type: 'string', maxLength: 63 }, app: { type: 'string', maxLength: 63 } } } as const;
const versionSchema = {
  type: 'object',
  properties: {
    version: { type: 'string' },
    sha256: { type: 'string' },
    size: { type: 'integer' },
    methods: { type: 'array', items: { type: 'string' } },
    created_at: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'approved', 'rejected'] },
    uploaded_by: { type: 'string' },
  },
} as const;

export function appRoutes(ctx: ServerContext) {
  const { platform } = ctx;
  const deployer = requireScope(ctx.identity, platform.tenants, 'apps:deploy');
  return async (app: FastifyInstance) => {
    // Bundles are bytes: fastify's default parsers would decode text/plain lossily (bypassing the UTF-8 check) or accept a JSON string.
    app.removeContentTypeParser(['application/json', 'text/plain']);
    app.addContentTypeParser(
      ['application/javascript', 'text/javascript', 'application/octet-stream'],
      { parseAs: 'buffer', bodyLimit: platform.config.deployment.max_bundle_bytes },
      (_req, body, done) => done(null, body),
    );

    app.put<{ Params: { tenant: string; app: string }; Body: Buffer }>(
      '/v1/tenants/:tenant/apps/:app',
      {
        bodyLimit: platform.config.deployment.max_bundle_bytes,
        onRequest: deployer,
        schema: {
          operationId: 'uploadApp',
          summary: 'Upload a bundle as the newest version of an app',
          tags: ['apps'],
          consumes: ['application/javascript'],
          params: tenantApp,
          // Documented only (the bytes are checked by readBundle + validateBundle, not by ajv).
          'x-body': { type: 'string', format: 'binary', description: 'the bundle: one self-contained ES module' },
          response: {
            201: {
              description: 'the new version; `state` is pending when the tenant\'s uploads wait for review',
              type: 'object',
              properties: {
                app: { type: 'string' },
                version: { type: 'string' },
                sha256: { type: 'string' },
                size: { type: 'integer' },
                methods: { type: 'array', items: { type: 'string' } },
                state: { type: 'string', enum: ['pending', 'approved', 'rejected'] },
              },
            },
            ...errorResponses(V1_ERRORS, BODY_ERRORS, ['miniapp_error', 'timeout']),
          },
        },
      },
      async (req, reply) => {
        const caller = callerOf(req);
        const appId = checkAppId(req.params.app);
        const body = req.body;
        const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : '');
        const bundle = readBundle(bytes, platform.config.deployment.max_bundle_bytes);
        await checkBundleRules(bundle.source);
        const methods = await validateBundle(platform.host, caller.tenant, bundle);
        const review = caller.tenant.config.review === 'required';
        const v = await platform.apps.deploy(caller.tenant, appId, bundle, methods, { uploadedBy: caller.user.sub, review });
        const state = v.state ?? 'approved';
        auditApp(caller.tenant, 'upload', { app: appId, version: v.version, sha256: v.sha256, state, by: { sub: caller.user.sub, realm: caller.tenant.config.identity.realm } });
        return reply.status(201).send({ app: appId, version: v.version, sha256: v.sha256, size: v.size, methods: v.methods, state });
      },
    );

    app.get<{ Params: { tenant: string } }>(
      '/v1/tenants/:tenant/apps',
      {
        onRequest: deployer,
        schema: {
          operationId: 'listApps',
          summary: 'List apps with their versions',
          tags: ['apps'],
          response: {
            200: {
              description: 'the tenant\'s apps; `active` is the version with the largest share of the rollout',
              type: 'object',
              properties: { apps: { type: 'array', items: { type: 'object', properties: { app: { type: 'string' }, active: { type: 'string' }, versions: { type: 'array', items: versionSchema }, rollout: rolloutSchema } } } },
            },
            ...errorResponses(V1_ERRORS),
          },
        },
      },
      async (req) => {
        const caller = callerOf(req);
        return { apps: await platform.apps.list(caller.tenant) };
      },
    );
  };
}
