/**
 * Proves a bundle loads before it is accepted: compile, no imports, top-level code
 * runs within the tenant's limits, at least one exported function. It launches through
 * the same seam and the same tenant gate as any launch (InstanceHost.validate), in the
 * uploading tenant's own tier, so an upload counts against that tenant's rate,
 * concurrency and breach budget (THREATS F45); its platform calls are all refused.
 */
import type { InstanceHost } from '../sandbox/instance-host.ts';
import type { TenantContext } from '../tenants/context.ts';
import type { BundleSource } from './bundle.ts';

/** Resolves with the bundle's exported method names; rejects with a coded IsohostError. */
export function validateBundle(host: InstanceHost, tenant: TenantContext, bundle: BundleSource): Promise<string[]> {
  return host.validate(tenant, bundle);
}
