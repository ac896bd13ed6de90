/**
 * Where a platform keeps its keys, by storage engine (issue 13):
 *
 * - `leveldb`: files under data_dir, as one node has always kept them (realm-keys.ts);
 * - `postgres`: the platform schema of the platform database (storage/postgres/platform-keys.ts),
 *   so every node signs and verifies with the same realm keys, and a rotation on one node is
 *   seen by the others within a second.
 *
 * The egress credential key follows the same rule (egress/main.ts `egressKeyOf`).
 */
import type { PlatformConfig } from '../config/schema.ts';
import { createPgRealmKeyStore } from '../storage/postgres/platform-keys.ts';
import { PlatformDb } from '../storage/postgres/platform-schema.ts';
import { createRealmKeyStore, type RealmKeyStore } from './realm-keys.ts';

/** The key stores of one platform. */
export interface KeyStore {
  /** Signing keys of iam-internal realms (load, create on first use, rotate, retire). */
  readonly realms: RealmKeyStore;
  close(): Promise<void>;
}

/**
 * @example
 * const keys = openKeyStore(config);
 * const identity = createIdentity({ dataDir, tenants, keys: keys.realms });
 */
export function openKeyStore(config: PlatformConfig): KeyStore {
  const storage = config.deployment.storage;
  if (storage.engine === 'leveldb') {
    return { realms: createRealmKeyStore(config.deployment.data_dir), close: async () => {} };
  }
  const db = new PlatformDb(storage.url);
  return { realms: createPgRealmKeyStore(db), close: () => db.close() };
}
