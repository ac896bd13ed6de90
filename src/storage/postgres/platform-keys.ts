/**
 * Keys every node of a PostgreSQL platform shares, in the platform schema (platform-schema.ts):
 *
 * - realm signing keys: one `realm_keys` row per iam-internal realm, `doc` = the index as the
 *   file store keeps it (`keys: [{ kid, created_at, status }]`, oldest first) with each
 *   non-retired key's private JWK beside its entry; retiring a key deletes its JWK. Every
 *   change bumps `generation` in the same transaction (`SELECT … FOR UPDATE`), so two nodes
 *   rotating at once both land, one after the other;
 * - the egress credential key: the `secrets` row `egress.key`, 32 random bytes, created by
 *   the first node that needs it (`ON CONFLICT DO NOTHING`, then read back: every node uses
 *   the winner's).
 *
 * Another node's rotation is seen within `recheckMs` (1 s): a cached realm re-reads its
 * generation at most that often and reloads when it moved. While PostgreSQL cannot be
 * reached, a realm already read keeps its keys.
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { IsohostError } from '../../errors.ts';
import type { RealmKeyEntry, RealmKeyStore, RealmPublicJwk } from '../../identity/realm-keys.ts';
import { PLATFORM_SCHEMA, type PlatformDb } from './platform-schema.ts';

const REALM = /^[a-z0-9-]{1,63}$/;

interface StoredKey extends RealmKeyEntry {
  /** The private JWK; absent once retired. */
  jwk?: JWK;
}

interface RealmState {
  keys: StoredKey[];
  generation: number;
  checkedAt: number;
  /** This store's own counter: changes whenever the key set it serves changes. */
  local: number;
}

function checkRealm(realm: string): void {
  if (typeof realm !== 'string' || !REALM.test(realm)) throw new IsohostError('invalid_request', 'realm must match [a-z0-9-]{1,63}');
}

async function newKey(): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'sha256');
  return { kid, created_at: new Date().toISOString(), status: 'active', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d, kid } };
}

function entryOf(k: StoredKey): RealmKeyEntry {
  return { kid: k.kid, created_at: k.created_at, status: k.status };
}

/**
 * @example
 * const keys = createPgRealmKeyStore(new PlatformDb(url));
 * await keys.rotate('bu-a'); // every node signs with the new key within a second
 */
export function createPgRealmKeyStore(db: PlatformDb, options: { recheckMs?: number } = {}): RealmKeyStore {
  const recheckMs = options.recheckMs ?? 1000;
  const states = new Map<string, RealmState>();
  let locals = 0;

  async function load(realm: string): Promise<RealmState> {
    let row = (await db.query<{ doc: { keys: StoredKey[] }; generation: string }>(`SELECT doc, generation FROM ${PLATFORM_SCHEMA}.realm_keys WHERE realm = $1`, [realm])).rows[0];
    if (row === undefined) {
      // First use: the first node to insert seeds the realm; the others read its key.
      const first = await newKey();
      await db.query(`INSERT INTO ${PLATFORM_SCHEMA}.realm_keys (realm, doc, generation) VALUES ($1, $2, 1) ON CONFLICT (realm) DO NOTHING`, [realm, JSON.stringify({ keys: [first] })]);
      row = (await db.query<{ doc: { keys: StoredKey[] }; generation: string }>(`SELECT doc, generation FROM ${PLATFORM_SCHEMA}.realm_keys WHERE realm = $1`, [realm])).rows[0]!;
    }
    const generation = Number(row.generation);
    const previous = states.get(realm);
    const state: RealmState = {
      keys: row.doc.keys,
      generation,
      checkedAt: Date.now(),
      local: previous !== undefined && previous.generation === generation ? previous.local : ++locals,
    };
    states.set(realm, state);
    return state;
  }

  async function current(realm: string): Promise<RealmState> {
    checkRealm(realm);
    const state = states.get(realm);
    if (state === undefined) return load(realm);
    if (Date.now() - state.checkedAt < recheckMs) return state;
    let row: { generation: string } | undefined;
    try {
      row = (await db.query<{ generation: string }>(`SELECT generation FROM ${PLATFORM_SCHEMA}.realm_keys WHERE realm = $1`, [realm])).rows[0];
    } catch {
      // PostgreSQL unreachable: the keys known a moment ago keep signing and verifying (tokens
      // stay valid through an outage); the next recheck tries again.
      state.checkedAt = Date.now();
      return state;
    }
    if (row !== undefined && Number(row.generation) === state.generation) {
      state.checkedAt = Date.now();
      return state;
    }
    return load(realm);
  }

  /** Changes the realm's keys in one transaction, under the row's lock. */
  async function change<T>(realm: string, edit: (keys: StoredKey[]) => Promise<{ keys: StoredKey[]; result: T }>): Promise<T> {
    await current(realm); // seeds the realm when new
    const result = await db.transaction(async (client) => {
      const row = (await client.query<{ doc: { keys: StoredKey[] } }>(`SELECT doc FROM ${PLATFORM_SCHEMA}.realm_keys WHERE realm = $1 FOR UPDATE`, [realm])).rows[0]!;
      const next = await edit(row.doc.keys);
      await client.query(`UPDATE ${PLATFORM_SCHEMA}.realm_keys SET doc = $2, generation = generation + 1 WHERE realm = $1`, [realm, JSON.stringify({ keys: next.keys })]);
      return next.result;
    });
    await load(realm);
    return result;
  }

  const signing = (keys: StoredKey[]) => keys.filter((k) => k.status === 'active').at(-1);

  return {
    async signingKey(realm) {
      const key = signing((await current(realm)).keys);
      if (key?.jwk === undefined) throw new IsohostError('invalid_request', `realm ${realm} has no active key; rotate it`);
      return { kid: key.kid, key: (await importJWK(key.jwk, 'EdDSA')) as CryptoKey };
    },
    rotate(realm) {
      return change(realm, async (keys) => {
        const added = await newKey();
        return { keys: [...keys, added], result: entryOf(added) };
      });
    },
    retire(realm, kid) {
      return change(realm, async (keys) => {
        const entry = keys.find((k) => k.kid === kid);
        if (entry === undefined) throw new IsohostError('invalid_request', `realm ${realm} has no key ${String(kid).slice(0, 64)}`);
        if (signing(keys)?.kid === kid) throw new IsohostError('invalid_request', 'cannot retire the current signing key; rotate first');
        const retired: StoredKey = { ...entryOf(entry), status: 'retired' };
        return { keys: keys.map((k) => (k.kid === kid ? retired : k)), result: entryOf(retired) };
      });
    },
    async list(realm) {
      return (await current(realm)).keys.map(entryOf);
    },
    async publicJwks(realm) {
      const keys: RealmPublicJwk[] = (await current(realm)).keys
        .filter((k) => k.status === 'active' && k.jwk !== undefined)
        .map((k) => ({ kty: 'OKP', crv: 'Ed25519', x: String(k.jwk!.x), kid: k.kid, alg: 'EdDSA', use: 'sig' }));
      return { keys };
    },
    async refresh(realm) {
      return (await current(realm)).local;
    },
  };
}

/** The name of the egress credential key in `secrets`. */
const EGRESS_SECRET = 'egress.key';

/**
 * The platform's egress credential key: 32 random bytes, the same on every node.
 *
 * @example
 * const key = await loadOrCreatePgEgressKey(db); // Buffer of 32 bytes
 */
export async function loadOrCreatePgEgressKey(db: PlatformDb): Promise<Buffer> {
  await db.query(`INSERT INTO ${PLATFORM_SCHEMA}.secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [EGRESS_SECRET, randomBytes(32)]);
  const row = (await db.query<{ value: Buffer }>(`SELECT value FROM ${PLATFORM_SCHEMA}.secrets WHERE name = $1`, [EGRESS_SECRET])).rows[0];
  if (row === undefined || row.value.length < 32) throw new IsohostError('storage_error', 'the egress key in the platform schema is missing or shorter than 32 bytes');
  return row.value;
}
