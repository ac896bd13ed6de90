/**
 * The store of a tenant whose own database could not be opened (corrupt, unreadable):
 * every operation fails with that tenant's coded `storage_error`, so the one broken
 * tenant fails alone while every other tenant of the host keeps working (THREATS E39).
 * It holds no handle and touches no file; the operator repairs or restores the
 * directory and restarts.
 */
import { IsohostError } from '../errors.ts';
import type { AppStore, TenantStore } from './backend.ts';

/**
 * @example
 * const store = unavailableTenantStore('database', openError);
 * await store.app('notes').get('k'); // rejects: storage_error "storage is corrupt: …"
 */
export function unavailableTenantStore(isolation: 'schema' | 'database', reason: IsohostError): TenantStore {
  // A fresh error per operation: one shared instance would carry one stack for all.
  const fail = (): Promise<never> => Promise.reject(new IsohostError('storage_error', reason.message));
  const app: AppStore = Object.freeze({ get: fail, set: fail, delete: fail, list: fail, batch: fail });
  return Object.freeze({
    isolation,
    app: () => app,
    system: () => app,
    usageBytes: () => 0,
    setQuotaBytes: () => {},
    purge: fail,
    exportEntries: () => ({
      [Symbol.asyncIterator]: () => ({ next: fail }),
    }),
  });
}
