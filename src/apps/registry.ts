/**
 * Deployed apps of one tenant, kept in that tenant's own store (its `system()`
 * keyspace, apart from every app's data): versions are content-addressed by sha256,
 * the newest is active. Bundles are stored in chunks so a 5 MiB bundle fits the
 * store's value size limit. Every stored version counts against the tenant's
 * `storage_mb`, like its apps' data.
 */
import { LRUCache } from 'lru-cache';
import { IsohostError } from '../errors.ts';
import type { TenantContext } from '../tenants/context.ts';
import { versionOf, type BundleSource } from './bundle.ts';
import type { AppBundle } from '../sandbox/instance-host.ts';

const CHUNK_CHARS = 256 * 1024;
/**
 * App records are cached in memory: every one-shot call resolves the active version,
 * and a store read per request showed up in the http.call profile. A deploy through
 * this process replaces the entry at once; the TTL bounds how long another process's
 * deploy to the same store (the planned multi-node setup) can go unseen.
 */
const RECORD_TTL_MS = 2000;
const RECORD_CACHE_MAX = 10_000;
/**
 * Bundle sources kept in memory, in bytes (UTF-16, as V8 holds them). Least recently used
 * bundles are evicted first, so a busy app keeps its bundle when many others are called.
 */
const BUNDLE_CACHE_BYTES = 64 * 1024 * 1024;
const APP_ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface AppVersion {
  version: string;
  sha256: string;
  size: number;
  methods: string[];
  created_at: string;
}

export interface AppRecord {
  app: string;
  active: string;
  versions: AppVersion[];
}

export function checkAppId(id: string): string {
  if (!APP_ID_RE.test(id)) throw new IsohostError('invalid_request', 'app id must match [a-z0-9][a-z0-9-]{0,62}');
  return id;
}

export interface AppRegistryOptions {
  /** Byte bound of the bundle cache (default 64 MiB). */
  bundleCacheBytes?: number;
}

export class AppRegistry {
  readonly #cache: LRUCache<string, AppBundle>;
  readonly #records = new LRUCache<string, { record: AppRecord | undefined; at: number }>({ max: RECORD_CACHE_MAX });

  constructor(options: AppRegistryOptions = {}) {
    this.#cache = new LRUCache<string, AppBundle>({
      maxSize: options.bundleCacheBytes ?? BUNDLE_CACHE_BYTES,
      sizeCalculation: (bundle) => bundle.source.length * 2 + 256,
    });
  }

  /** Stores a validated bundle as the app's newest version (idempotent for the same bytes). */
  async deploy(tenant: TenantContext, appId: string, bundle: BundleSource, methods: string[]): Promise<AppVersion> {
    checkAppId(appId);
    const sys = tenant.store.system();
    const version = versionOf(bundle.sha256);
    const record: AppRecord = (await this.record(tenant, appId)) ?? { app: appId, active: version, versions: [] };
    let entry = record.versions.find((v) => v.sha256 === bundle.sha256);
    const ops: { op: 'set'; key: string; value: string }[] = [];
    if (entry === undefined) {
      // Another app of the tenant may hold the same bytes: a bundle is stored (and counted) once.
      if ((await sys.get(`bundle:${bundle.sha256}`)) === undefined) ops.push(...bundleOps(bundle));
      entry = { version, sha256: bundle.sha256, size: bundle.size, methods, created_at: new Date().toISOString() };
      record.versions.push(entry);
    }
    record.active = entry.version;
    ops.push({ op: 'set', key: `app:${appId}`, value: JSON.stringify(record) });
    // One atomic write, charged against the tenant's storage_mb as a whole (THREATS F47):
    // an upload over quota stores nothing, not a bundle without the record that names it.
    await sys.batch(ops);
    this.#records.set(`${tenant.id}\u0000${appId}`, { record: structuredClone(record), at: Date.now() });
    return entry;
  }

  /** The app's record (a copy the caller may change), or undefined when the tenant has no such app. */
  async record(tenant: TenantContext, appId: string): Promise<AppRecord | undefined> {
    const record = await this.#cachedRecord(tenant, appId);
    return record && structuredClone(record);
  }

  /** The cached record itself: read-only for callers in this file. */
  async #cachedRecord(tenant: TenantContext, appId: string): Promise<Readonly<AppRecord> | undefined> {
    const key = `${tenant.id}\u0000${checkAppId(appId)}`;
    const hit = this.#records.get(key);
    if (hit !== undefined && Date.now() - hit.at < RECORD_TTL_MS) return hit.record;
    const text = await tenant.store.system().get(`app:${appId}`);
    const record = text === undefined ? undefined : (JSON.parse(text) as AppRecord);
    this.#records.set(key, { record, at: Date.now() });
    return record;
  }

  async list(tenant: TenantContext): Promise<AppRecord[]> {
    const out: AppRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await tenant.store.system().list({ prefix: 'app:', limit: 1000, cursor });
      for (const e of page.entries) out.push(JSON.parse(e.value) as AppRecord);
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
    return out;
  }

  /** The active version's bundle, or not_found. Cached per (tenant, app, sha256). */
  async active(tenant: TenantContext, appId: string): Promise<AppBundle> {
    const record = await this.#cachedRecord(tenant, appId);
    if (record === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
    const v = record.versions.find((x) => x.version === record.active)!;
    const cacheKey = `${tenant.id}\u0000${appId}\u0000${v.sha256}`;
    const hit = this.#cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const source = await this.bundleSource(tenant, v.sha256);
    if (source === undefined) throw new IsohostError('storage_error', `bundle of "${appId}" is missing from the tenant store`);
    const bundle: AppBundle = Object.freeze({ id: appId, version: v.version, source, sha256: v.sha256 });
    this.#cache.set(cacheKey, bundle);
    return bundle;
  }

  /** The whole source of a stored bundle (any version), or undefined when the store has none with that sha256. */
  async bundleSource(tenant: TenantContext, sha256: string): Promise<string | undefined> {
    const sys = tenant.store.system();
    const metaText = await sys.get(`bundle:${sha256}`);
    if (metaText === undefined) return undefined;
    const { chunks } = JSON.parse(metaText) as { chunks: number };
    let source = '';
    for (let i = 0; i < chunks; i++) source += JSON.parse((await sys.get(`bundle:${sha256}:${i}`)) ?? '""') as string;
    return source;
  }

  /**
   * Writes an app record and its bundles as they were exported (`isohost tenant import`):
   * versions keep their upload times; versions the tenant already had and the import
   * lacks are kept; the imported active version becomes active. Callers have checked
   * every bundle against its sha256.
   */
  async restore(tenant: TenantContext, record: AppRecord, bundles: ReadonlyMap<string, BundleSource>): Promise<void> {
    checkAppId(record.app);
    const sys = tenant.store.system();
    for (const v of record.versions) {
      const bundle = bundles.get(v.sha256);
      if (bundle === undefined) throw new IsohostError('invalid_request', `app "${record.app}" version ${v.version} has no bundle`);
      if ((await sys.get(`bundle:${v.sha256}`)) === undefined) await sys.batch(bundleOps(bundle));
    }
    const existing = await this.record(tenant, record.app);
    const imported = new Set(record.versions.map((v) => v.sha256));
    const merged: AppRecord = { ...record, versions: [...(existing?.versions.filter((v) => !imported.has(v.sha256)) ?? []), ...record.versions] };
    await sys.set(`app:${record.app}`, JSON.stringify(merged));
    this.#records.set(`${tenant.id}\u0000${record.app}`, { record: structuredClone(merged), at: Date.now() });
  }

  /** Drops this process's cached records and bundles of the tenant (after `tenant purge`). */
  forget(tenant: TenantContext): void {
    const prefix = `${tenant.id}\u0000`;
    for (const key of [...this.#records.keys()]) if (key.startsWith(prefix)) this.#records.delete(key);
    for (const key of [...this.#cache.keys()]) if (key.startsWith(prefix)) this.#cache.delete(key);
  }
}

/** The store writes of one bundle: its chunks, then the entry that says how many there are. */
function bundleOps(bundle: BundleSource): { op: 'set'; key: string; value: string }[] {
  const chunks = Math.ceil(bundle.source.length / CHUNK_CHARS);
  const ops: { op: 'set'; key: string; value: string }[] = [];
  for (let i = 0; i < chunks; i++) {
    ops.push({ op: 'set', key: `bundle:${bundle.sha256}:${i}`, value: JSON.stringify(bundle.source.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS)) });
  }
  ops.push({ op: 'set', key: `bundle:${bundle.sha256}`, value: JSON.stringify({ chunks, size: bundle.size }) });
  return ops;
}
