/**
 * The audit line of every change to a tenant's apps (issue 12): who (subject and realm),
 * when (pino's `time`), which tenant, app, version and sha256, and what changed. One line
 * per change, at info level, on the tenant's logger with `audit: "app"`, so a log pipeline
 * can keep them apart from operational lines.
 */
import type { TenantContext } from '../tenants/context.ts';
import type { Actor } from './registry.ts';

export type AppEvent = 'upload' | 'approve' | 'reject' | 'rollout' | 'delete';

export interface AppAuditFields {
  app: string;
  by: Actor;
  version?: string;
  sha256?: string;
  /** The version's state after the change. */
  state?: string;
  reason?: string;
  rollout?: Record<string, number>;
  purge?: boolean;
}

/**
 * @example
 * auditApp(tenant, 'approve', { app: 'notes', version, sha256, state: 'approved', by: { sub: 'ops-alice', realm: 'ops' } });
 */
export function auditApp(tenant: TenantContext, event: AppEvent, fields: AppAuditFields): void {
  tenant.logger.info({ audit: 'app', event, tenant: tenant.id, ...fields }, `app ${event}: ${fields.app}${fields.version === undefined ? '' : ` ${fields.version}`}`);
}
