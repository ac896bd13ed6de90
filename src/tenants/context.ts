/**
 * The value a tenant is known by below the launch point (STYLE habit 6). It is built
 * once from validated config, frozen, and passed down; nothing below it can ask for
 * another tenant's context, because nothing below it holds the registry.
 */
import type { Logger } from 'pino';
import type { TenantConfig, TenantLimits } from '../config/schema.ts';
import type { TenantStore } from '../storage/backend.ts';

export interface TenantContext {
  readonly id: string;
  readonly config: Readonly<TenantConfig>;
  readonly limits: Readonly<TenantLimits>;
  readonly store: TenantStore;
  readonly logger: Logger;
}
