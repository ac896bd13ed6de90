/**
 * Deployed apps of one tenant, kept in that tenant's own store (its `system()`
 * keyspace, apart from every app's data): versions are content-addressed by sha256.
 * A version is `pending`, `approved` or `rejected` (issue 12): a tenant with
 * `review: required` gets its uploads as `pending`, to be approved by an operator; the
 * rollout (rollout.ts) shares the calls of the app among approved versions. Bundles are
 * stored in chunks so a 5 MiB bundle fits the store's value size limit. Every stored
 * version counts against the tenant's `storage_mb`, like its apps' data.
 *
 * Record compatibility: a record written before states and rollouts has neither; it reads
 * as every version approved and its `active` version at 100 %. `active` is still written
 * (the version with the largest share), so older readers and exports keep working.
 */
import { LRUCache } from 'lru-cache';
import { IsohostError } from '../errors.ts';
import { KeyedLock } from '../storage/keyed-lock.ts';
import type { TenantContext } from '../tenants/context.ts';
import { versionOf, type BundleSource } from './bundle.ts';
import { bucketOf, checkRollout, leadingVersion, versionForBucket, type Rollout } from './rollout.ts';
import type { AppBundle } from '../sandbox/instance-host.ts';

const CHUNK_CHARS = 256 * 1024;
/**
 * App records are cached in memory: every one-shot call resolves its version, and a store
 * read per request showed up in the http.call profile. A change through this process
 * replaces the entry at once; the TTL bounds how long another node's change to the same
 * store (a rollback, a delete) can go unseen: rollback must reach new calls on every node
 * within a second (issue 12), so half a second, plus the read itself.
 */
export const RECORD_TTL_MS = 500;
const RECORD_CACHE_MAX = 10_000;
/**
 * Bundle sources kept in memory, in bytes (UTF-16, as V8 holds them). Least recently used
 * bundles are evicted first, so a busy app keeps its bundle when many others are called.
 */
const BUNDLE_CACHE_BYTES = 64 * 1024 * 1024;
const APP_ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DELETE_PAGE = 500;

export type VersionState = 'pending' | 'approved' | 'rejected';

/** Who changed a version's state: a subject of a realm (the operator realm for reviews). */
export interface Actor {
  sub: string;
  realm: string;
}

export interface AppVersion {
  version: string;
  sha256: string;
  size: number;
  methods: string[];
  /** When it was uploaded (ISO 8601); shown as `uploaded_at`. */
  created_at: string;
  /** Absent in records written before review existed: approved. */
  state?: VersionState;
  /** The subject whose token uploaded it; absent in older records. */
  uploaded_by?: string;
  reviewed_by?: Actor;
  reviewed_at?: string;
  /** Why it was rejected. */
  reason?: string;
}

export interface AppRecord {
  app: string;
  /** The version with the largest share ('' when no version is rolled out). */
  active: string;
  versions: AppVersion[];
  /** Absent in older records: `active` at 100 %. */
  rollout?: Rollout;
}

/** A version as the API shows it. */
export interface VersionView {
  version: string;
  sha256: string;
  size: number;
  uploaded_at: string;
  uploaded_by: string | null;
  state: VersionState;
  reason?: string;
}

export function checkAppId(id: string): string {
  if (!APP_ID_RE.test(id)) throw new IsohostError('invalid_request', 'app id must match [a-z0-9][a-z0-9-]{0,62}');
  return id;
}

/** Fills in what older records lack (see the file comment); changes `record` in place. */
function normalize(record: AppRecord): AppRecord {
  for (const v of record.versions) v.state ??= 'approved';
  if (record.rollout === undefined) {
    const active = record.versions.find((v) => v.version === record.active);
    record.rollout = active === undefined ? {} : { [active.version]: 100 };
  }
  return record;
}

export function versionView(v: AppVersion): VersionView {
  return {
    version: v.version,
    sha256: v.sha256,
    size: v.size,
    uploaded_at: v.created_at,
    uploaded_by: v.uploaded_by ?? null,
    state: v.state ?? 'approved',
    ...(v.reason === undefined ? {} : { reason: v.reason }),
  };
}

export interface DeployOptions {
  /** The uploading subject. */
  uploadedBy?: string;
  /** The tenant's uploads wait for review: a new version is `pending` and serves nobody. */
  review?: boolean;
}

export interface AppRegistryOptions {
  /** Byte bound of the bundle cache (default 64 MiB). */
  bundleCacheBytes?: number;
}

/** What the rollout pick needs from a record, derived once per cached record object (records are never changed once cached). */
interface Pick {
  /** Version ids in upload order. */
  order: string[];
  byVersion: Map<string, AppVersion>;
  /** One version at 100 %: no subject hash needed. */
  single: boolean;
  leading: string;
}

const picks = new WeakMap<Readonly<AppRecord>, Pick>();

function pickOf(record: Readonly<AppRecord>): Pick {
  let pick = picks.get(record);
  if (pick === undefined) {
    const rollout = record.rollout ?? {};
    const order = record.versions.map((v) => v.version);
    pick = { order, byVersion: new Map(record.versions.map((v) => [v.version, v])), single: Object.keys(rollout).length === 1, leading: leadingVersion(rollout, order) };
    picks.set(record, pick);
  }
  return pick;
}

export class AppRegistry {
  readonly #cache: LRUCache<string, AppBundle>;
  readonly #records = new LRUCache<string, { record: AppRecord | undefined; at: number }>({ max: RECORD_CACHE_MAX });
  /**
   * One change to a tenant's app records at a time in this process (read-modify-write; and a
   * delete must not drop a bundle that a concurrent upload of another app counts on finding).
   */
  readonly #lock = new KeyedLock();

  constructor(options: AppRegistryOptions = {}) {
    this.#cache = new LRUCache<string, AppBundle>({
      maxSize: options.bundleCacheBytes ?? BUNDLE_CACHE_BYTES,
      sizeCalculation: (bundle) => bundle.source.length * 2 + 256,
    });
  }

  /**
   * Stores a validated bundle as a version of the app (idempotent for the same bytes). A new
   * version is `approved` and takes 100 % of the rollout, or `pending` with `review`. Uploading
   * the bytes of an approved version again (without review) rolls it out at 100 %.
   */
  async deploy(tenant: TenantContext, appId: string, bundle: BundleSource, methods: string[], options: DeployOptions = {}): Promise<AppVersion> {
    checkAppId(appId);
    return this.#change(tenant, appId, async (found) => {
      const sys = tenant.store.system();
      const version = versionOf(bundle.sha256);
      const record: AppRecord = found ?? { app: appId, active: '', versions: [], rollout: {} };
      let entry = record.versions.find((v) => v.sha256 === bundle.sha256);
      const ops: { op: 'set'; key: string; value: string }[] = [];
      if (entry === undefined) {
        // Another app of the tenant may hold the same bytes: a bundle is stored (and counted) once.
        if ((await sys.get(`bundle:${bundle.sha256}`)) === undefined) ops.push(...bundleOps(bundle));
        entry = {
          version,
          sha256: bundle.sha256,
          size: bundle.size,
          methods,
          created_at: new Date().toISOString(),
          state: options.review === true ? 'pending' : 'approved',
          ...(options.uploadedBy === undefined ? {} : { uploaded_by: options.uploadedBy }),
        };
        record.versions.push(entry);
      }
      if (entry.state === 'approved' && options.review !== true) record.rollout = { [entry.version]: 100 };
      return { record, ops, out: entry };
    });
  }

  /**
   * Approves or rejects a pending version. An approved version of an app that serves nobody
   * yet takes 100 %; otherwise the rollout stays as it is (the tenant shares it out).
   */
  async review(tenant: TenantContext, appId: string, version: string, decision: 'approved' | 'rejected', by: Actor, reason?: string): Promise<AppVersion> {
    return this.#change(tenant, appId, async (record) => {
      if (record === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
      const entry = record.versions.find((v) => v.version === version);
      if (entry === undefined) throw new IsohostError('not_found', `app "${appId}" has no version "${version.slice(0, 64)}"`);
      if (entry.state !== 'pending') throw new IsohostError('invalid_request', `version ${version} is ${entry.state}; only a pending version can be reviewed`);
      entry.state = decision;
      entry.reviewed_by = { sub: by.sub, realm: by.realm };
      entry.reviewed_at = new Date().toISOString();
      if (reason !== undefined) entry.reason = reason;
      if (decision === 'approved' && Object.keys(record.rollout ?? {}).length === 0) record.rollout = { [entry.version]: 100 };
      return { record, ops: [], out: entry };
    });
  }

  /** Replaces the app's rollout (rollout.ts checkRollout: approved versions, whole percents, sum 100). */
  async setRollout(tenant: TenantContext, appId: string, requested: unknown): Promise<Rollout> {
    return this.#change(tenant, appId, async (record) => {
      if (record === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
      const approved = new Set(record.versions.filter((v) => v.state === 'approved').map((v) => v.version));
      record.rollout = checkRollout(requested, approved);
      return { record, ops: [], out: { ...record.rollout } };
    });
  }

  /**
   * Deletes the app: its record and rollout, and the bundles no other app of the tenant uses.
   * With `purge`, the app's data too; without, its data stays for a later upload of the same id.
   */
  async remove(tenant: TenantContext, appId: string, purge: boolean): Promise<void> {
    checkAppId(appId);
    await this.#lock.run([tenant.id], async () => {
      const sys = tenant.store.system();
      const text = await sys.get(`app:${appId}`);
      if (text === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
      const record = JSON.parse(text) as AppRecord;
      const others = (await this.list(tenant)).filter((r) => r.app !== appId);
      const kept = new Set(others.flatMap((r) => r.versions.map((v) => v.sha256)));
      const ops: { op: 'delete'; key: string }[] = [{ op: 'delete', key: `app:${appId}` }];
      for (const sha256 of new Set(record.versions.map((v) => v.sha256))) {
        if (kept.has(sha256)) continue;
        const meta = await sys.get(`bundle:${sha256}`);
        const chunks = meta === undefined ? 0 : (JSON.parse(meta) as { chunks: number }).chunks;
        for (let i = 0; i < chunks; i++) ops.push({ op: 'delete', key: `bundle:${sha256}:${i}` });
        ops.push({ op: 'delete', key: `bundle:${sha256}` });
      }
      await sys.batch(ops);
      this.#records.set(`${tenant.id}\u0000${appId}`, { record: undefined, at: Date.now() });
      for (const key of [...this.#cache.keys()]) if (key.startsWith(`${tenant.id}\u0000${appId}\u0000`)) this.#cache.delete(key);
      if (purge) await purgeAppData(tenant, appId);
    });
  }

  /** The app's record (a copy the caller may change), or undefined when the tenant has no such app. */
  async record(tenant: TenantContext, appId: string): Promise<AppRecord | undefined> {
    const record = await this.#cachedRecord(tenant, appId);
    return record && structuredClone(record);
  }

  /** The cached record itself: read-only for callers in this file. */
  async #cachedRecord(tenant: TenantContext, appId: string): Promise<Readonly<AppRecord> | undefined> {
    const fresh = this.#freshRecord(tenant, appId);
    return fresh !== undefined ? fresh.record : this.#readRecord(tenant, appId);
  }

  /** The cached record while younger than RECORD_TTL_MS (`record` undefined: the app does not exist); else undefined. */
  #freshRecord(tenant: TenantContext, appId: string): { record: Readonly<AppRecord> | undefined } | undefined {
    const hit = this.#records.get(`${tenant.id}\u0000${checkAppId(appId)}`);
    return hit !== undefined && Date.now() - hit.at < RECORD_TTL_MS ? hit : undefined;
  }

  async #readRecord(tenant: TenantContext, appId: string): Promise<AppRecord | undefined> {
    const text = await tenant.store.system().get(`app:${appId}`);
    const record = text === undefined ? undefined : normalize(JSON.parse(text) as AppRecord);
    this.#records.set(`${tenant.id}\u0000${appId}`, { record, at: Date.now() });
    return record;
  }

  /**
   * Read-modify-write of one app record under this process's lock, always from the store (a
   * cached record may be up to RECORD_TTL_MS old). `active` is recomputed from the rollout.
   */
  async #change<T>(
    tenant: TenantContext,
    appId: string,
    fn: (record: AppRecord | undefined) => Promise<{ record: AppRecord; ops: { op: 'set'; key: string; value: string }[]; out: T }>,
  ): Promise<T> {
    const key = `${tenant.id}\u0000${checkAppId(appId)}`;
    return this.#lock.run([tenant.id], async () => {
      const found = await this.#readRecord(tenant, appId);
      const { record, ops, out } = await fn(found && structuredClone(found));
      record.active = leadingVersion(record.rollout ?? {}, record.versions.map((v) => v.version));
      // One atomic write, charged against the tenant's storage_mb as a whole (THREATS F47):
      // an upload over quota stores nothing, not a bundle without the record that names it.
      await tenant.store.system().batch([...ops, { op: 'set', key: `app:${appId}`, value: JSON.stringify(record) }]);
      this.#records.set(key, { record: structuredClone(record), at: Date.now() });
      return out;
    });
  }

  /** Every app record of the tenant, normalized (older records gain states and a rollout). */
  async list(tenant: TenantContext): Promise<AppRecord[]> {
    const out: AppRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await tenant.store.system().list({ prefix: 'app:', limit: 1000, cursor });
      for (const e of page.entries) out.push(normalize(JSON.parse(e.value) as AppRecord));
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
    return out;
  }

  /**
   * The bundle that serves `sub` (rollout.ts: a stable hash of app and sub); without a subject,
   * the version with the largest share. not_found when the app does not exist or no version
   * is rolled out (e.g. its only version is pending). Cached per (tenant, app, sha256).
   */
  async active(tenant: TenantContext, appId: string, sub?: string | null): Promise<AppBundle> {
    // Every one-shot call asks (bench http.call): a fresh cached record is used without an await.
    const fresh = this.#freshRecord(tenant, appId);
    const record = fresh !== undefined ? fresh.record : await this.#readRecord(tenant, appId);
    if (record === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
    const pick = pickOf(record);
    // One version at 100 % (the usual case) needs no hash: every caller gets it.
    const chosen = pick.single || sub === undefined || sub === null ? pick.leading : versionForBucket(record.rollout ?? {}, pick.order, bucketOf(appId, sub));
    const v = chosen === undefined ? undefined : pick.byVersion.get(chosen);
    if (v === undefined) throw new IsohostError('not_found', `app "${appId}" has no approved version rolled out`);
    return this.#cache.get(`${tenant.id}\u0000${appId}\u0000${v.sha256}`) ?? this.#bundle(tenant, appId, v);
  }

  /** The bundle of one stored version (any state), or not_found. */
  async versionBundle(tenant: TenantContext, appId: string, version: string): Promise<AppBundle> {
    const record = await this.#cachedRecord(tenant, appId);
    if (record === undefined) throw new IsohostError('not_found', `no app "${appId}"`);
    const v = record.versions.find((x) => x.version === version);
    if (v === undefined) throw new IsohostError('not_found', `app "${appId}" has no version "${version.slice(0, 64)}"`);
    return this.#bundle(tenant, appId, v);
  }

  async #bundle(tenant: TenantContext, appId: string, v: AppVersion): Promise<AppBundle> {
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
   * versions keep their upload times and states; versions the tenant already had and the
   * import lacks are kept; the imported rollout (or, from an older export, its active
   * version at 100 %) is taken. Callers have checked every bundle against its sha256.
   */
  async restore(tenant: TenantContext, record: AppRecord, bundles: ReadonlyMap<string, BundleSource>): Promise<void> {
    checkAppId(record.app);
    const sys = tenant.store.system();
    for (const v of record.versions) {
      const bundle = bundles.get(v.sha256);
      if (bundle === undefined) throw new IsohostError('invalid_request', `app "${record.app}" version ${v.version} has no bundle`);
      if ((await sys.get(`bundle:${v.sha256}`)) === undefined) await sys.batch(bundleOps(bundle));
    }
    await this.#change(tenant, record.app, async (existing) => {
      const imported = new Set(record.versions.map((v) => v.sha256));
      const merged = normalize(structuredClone({ ...record, versions: [...(existing?.versions.filter((v) => !imported.has(v.sha256)) ?? []), ...record.versions] }));
      return { record: merged, ops: [], out: undefined };
    });
  }

  /** Drops this process's cached records and bundles of the tenant (after `tenant purge`). */
  forget(tenant: TenantContext): void {
    const prefix = `${tenant.id}\u0000`;
    for (const key of [...this.#records.keys()]) if (key.startsWith(prefix)) this.#records.delete(key);
    for (const key of [...this.#cache.keys()]) if (key.startsWith(prefix)) this.#cache.delete(key);
  }
}

/** Deletes every entry of one app's keyspace, a page at a time (each page one atomic batch). */
async function purgeAppData(tenant: TenantContext, appId: string): Promise<void> {
  const store = tenant.store.app(appId);
  for (;;) {
    const page = await store.list({ prefix: '', limit: DELETE_PAGE });
    if (page.entries.length === 0) return;
    await store.batch(page.entries.map((e) => ({ op: 'delete' as const, key: e.key })));
  }
}

/** Bytes a bundle takes in the tenant's store (keys and values), which count against `storage_mb`. */
export function bundleStoredBytes(bundle: BundleSource): number {
  let n = 0;
  for (const op of bundleOps(bundle)) n += Buffer.byteLength(op.key) + Buffer.byteLength(op.value);
  return n;
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
