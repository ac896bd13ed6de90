/**
 * The storage seam. One implementation per engine (LevelDB now, PostgreSQL later).
 * A `TenantStore` is opened for exactly one tenant; an `AppStore` is that tenant's
 * store narrowed to one app. Bindings only ever hold an `AppStore`: there is no
 * method anywhere below this line that takes a tenant id.
 */

/** JSON text of a stored value (already validated, ≤ MAX_VALUE_BYTES). */
export type JsonText = string;

export interface ListOptions {
  /** Only keys starting with this prefix (may be ''). */
  prefix: string;
  /** 1..1000. */
  limit: number;
  /** Opaque cursor returned by a previous list; resumes strictly after it. */
  cursor?: string | undefined;
}

export interface ListPage {
  entries: { key: string; value: JsonText }[];
  /** Cursor for the next page, or null when this page is the last. */
  cursor: string | null;
}

export type BatchOp = { op: 'set'; key: string; value: JsonText } | { op: 'delete'; key: string };

/** One app's keyspace inside one tenant's store. */
export interface AppStore {
  get(key: string): Promise<JsonText | undefined>;
  /** Resolves only once durable (LevelDB `sync: true`). Throws resource_exhausted over quota. */
  set(key: string, value: JsonText): Promise<void>;
  delete(key: string): Promise<void>;
  list(options: ListOptions): Promise<ListPage>;
  /** Atomic: all ops or none. */
  batch(ops: BatchOp[]): Promise<void>;
}

/** One tenant's store (a namespace in the shared DB, or a DB of its own). */
export interface TenantStore {
  readonly isolation: 'schema' | 'database';
  app(appId: string): AppStore;
  /** Bytes of keys + values currently stored by the tenant (all apps). */
  usageBytes(): number;
  /** Every entry of every app of this tenant, app by app, key order. */
  exportEntries(): AsyncIterable<{ app: string; key: string; value: JsonText }>;
  /** Applies a new quota (a config reload changed `storage_mb`); writes already acknowledged stay. */
  setQuotaBytes(quotaBytes: number): void;
  /** Deletes all of this tenant's data and nothing else. */
  purge(): Promise<void>;
  /** Platform records of the tenant (deployed bundles, realm state), kept apart from app keyspaces. */
  system(): AppStore;
}

/** Opens tenant stores for one data_dir. */
export interface StorageBackend {
  open(tenant: { namespace: string; isolation: 'schema' | 'database'; quotaBytes: number }): Promise<TenantStore>;
  /** Health probe used by /readyz. */
  check(): Promise<void>;
  close(): Promise<void>;
}
