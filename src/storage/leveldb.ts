/**
 * The LevelDB `StorageBackend`. Layout under `data_dir`:
 *
 *   shared/               one ClassicLevel; a tenant with `isolation: schema` is the
 *                         sublevel named by its namespace (`!<namespace>!…`)
 *   tenants/<namespace>/  a ClassicLevel of its own for `isolation: database`
 *                         (own files, LOCK and log: backed up or deleted alone)
 *
 * The shared DB opens on the first schema tenant. Raw level errors never leave
 * this folder: they carry host paths (see level-errors.ts).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { IsohostError } from '../errors.ts';
import type { StorageBackend, TenantStore } from './backend.ts';
import { assertTenantSpec } from './key-codec.ts';
import { SYNC } from './level-app-store.ts';
import { level } from './level-errors.ts';
import { LevelTenantStore, type Level, type TenantLocation } from './level-tenant-store.ts';

type Isolation = 'schema' | 'database';

export interface LevelBackendOptions {
  /** The `deployment.data_dir` of the config; created when missing. */
  readonly dataDir: string;
}

async function openLevel(path: string): Promise<ClassicLevel<string, string>> {
  const db = new ClassicLevel<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await level(db.open());
  return db;
}

/** A schema tenant: a namespace of the shared DB. */
function namespaceLocation(shared: ClassicLevel<string, string>, namespace: string): TenantLocation {
  return {
    db: () => shared as unknown as Level,
    base: [namespace],
    async wipe() {
      const tenant = shared.sublevel(namespace);
      await level(tenant.clear());
      // clear() does not fsync; one synced write flushes the log up to and including it.
      await level(tenant.del('purged', SYNC));
    },
    async close() {},
  };
}

/** A database tenant: its own directory, closed, removed and recreated by a purge. */
function ownLocation(path: string, initial: ClassicLevel<string, string>): TenantLocation {
  let db = initial;
  return {
    db: () => db as unknown as Level,
    base: [],
    async wipe() {
      await level(db.close());
      await level(rm(path, { recursive: true, force: true }));
      db = await openLevel(path);
    },
    close: () => level(db.close()),
  };
}

/**
 * Opens tenant stores under one data directory and caches them by namespace.
 *
 * @example
 * const backend = new LevelStorageBackend({ dataDir: './data' });
 * const store = await backend.open({ namespace: 'acme', isolation: 'database', quotaBytes: 100 * 1048576 });
 * await store.app('notes').set('greeting', '"hello"');
 */
export class LevelStorageBackend implements StorageBackend {
  readonly #dataDir: string;
  readonly #tenants = new Map<string, { isolation: Isolation; store: Promise<LevelTenantStore> }>();
  #shared: Promise<ClassicLevel<string, string>> | null = null;
  #closed = false;

  constructor(options: LevelBackendOptions) {
    if (typeof options?.dataDir !== 'string' || options.dataDir === '') {
      throw new TypeError('LevelStorageBackend: options.dataDir must be a non-empty path');
    }
    this.#dataDir = options.dataDir;
  }

  async open(tenant: { namespace: string; isolation: Isolation; quotaBytes: number }): Promise<TenantStore> {
    const { namespace, isolation, quotaBytes } = tenant;
    assertTenantSpec(tenant);
    if (this.#closed) throw new IsohostError('unavailable', 'storage is closed');
    const cached = this.#tenants.get(namespace);
    if (cached !== undefined) {
      if (cached.isolation !== isolation) {
        throw new IsohostError('invalid_request', 'a store for this namespace is already open with another isolation level');
      }
      return cached.store;
    }
    const store = this.#openTenant(namespace, isolation, quotaBytes);
    this.#tenants.set(namespace, { isolation, store });
    // A failed open is not cached: the next open retries (e.g. once a lock is released).
    store.catch(() => {
      if (this.#tenants.get(namespace)?.store === store) this.#tenants.delete(namespace);
    });
    return store;
  }

  async #openTenant(namespace: string, isolation: Isolation, quotaBytes: number): Promise<LevelTenantStore> {
    if (isolation === 'schema') {
      return LevelTenantStore.open(isolation, namespaceLocation(await this.#sharedDb(), namespace), quotaBytes);
    }
    const path = join(this.#dataDir, 'tenants', namespace);
    const location = ownLocation(path, await openLevel(path));
    try {
      return await LevelTenantStore.open(isolation, location, quotaBytes);
    } catch (err) {
      await location.close().catch(() => {});
      throw err;
    }
  }

  #sharedDb(): Promise<ClassicLevel<string, string>> {
    if (this.#shared === null) {
      const shared = openLevel(join(this.#dataDir, 'shared'));
      this.#shared = shared;
      shared.catch(() => {
        if (this.#shared === shared) this.#shared = null;
      });
    }
    return this.#shared;
  }

  /** Every open DB answers a read; throws storage_error otherwise. */
  async check(): Promise<void> {
    if (this.#closed) throw new IsohostError('unavailable', 'storage is closed');
    const probes: Promise<unknown>[] = [];
    if (this.#shared !== null) probes.push(this.#shared.then((db) => level(db.get('probe'))));
    for (const { store } of this.#tenants.values()) {
      // Only stores that opened: a failed open is reported by open(), not by the probe.
      probes.push(store.then((s) => (s.isolation === 'database' ? level(s.system().get('probe')) : undefined), () => undefined));
    }
    await Promise.all(probes);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing: Promise<unknown>[] = [];
    for (const { store } of this.#tenants.values()) closing.push(store.then((s) => s.close(), () => undefined));
    this.#tenants.clear();
    await Promise.allSettled(closing);
    if (this.#shared !== null) await this.#shared.then((db) => db.close(), () => undefined);
    this.#shared = null;
  }
}
