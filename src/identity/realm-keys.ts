/**
 * Signing keys of `iam-internal` realms, on disk under `<data_dir>/realms/<realm>/`:
 *
 * - `keys.json`      the index: `{ "keys": [{ kid, created_at, status: "active" | "retired" }] }`,
 *                    oldest first; the newest active key signs.
 * - `<kid>.jwk.json` one Ed25519 private JWK per non-retired key, file mode 0600.
 *
 * `kid` is the RFC 7638 JWK thumbprint (SHA-256, base64url, 43 chars), so a kid names one key
 * and nothing else. File names are only ever built from kids read from our own index (and
 * checked against that shape), never from a token header (RFC 8725 §3.10: don't trust input
 * to select resources). Retiring a key deletes its private file: a retired key never verifies.
 *
 * Another process (`isohost realm rotate` while `serve` runs) may change the index; `refresh`
 * notices it by the file's identity (ino, mtime, size), checked at most once per `recheckMs`.
 */
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { IsohostError } from '../errors.ts';

export type KeyStatus = 'active' | 'retired';
export interface RealmKeyEntry { kid: string; created_at: string; status: KeyStatus }

/** Public parts of one realm key, as served in the realm's JWKS. */
export interface RealmPublicJwk { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; alg: 'EdDSA'; use: 'sig' }

interface RealmState {
  entries: RealmKeyEntry[];
  privateJwks: Map<string, JWK>;
  stamp: string;
  checkedAt: number;
  generation: number;
}

/** The key store of every iam-internal realm under one data directory. */
export interface RealmKeyStore {
  /** The newest active key (created on first use). */
  signingKey(realm: string): Promise<{ kid: string; key: CryptoKey }>;
  /** A new key becomes the signing key; older active keys keep verifying until retired. */
  rotate(realm: string): Promise<RealmKeyEntry>;
  /** Marks `kid` retired and deletes its private file. The current signing key cannot be retired. */
  retire(realm: string, kid: string): Promise<RealmKeyEntry>;
  /** The index, oldest first. */
  list(realm: string): Promise<RealmKeyEntry[]>;
  /** Public parts of the non-retired keys (`GET /realms/:realm/.well-known/jwks.json`). */
  publicJwks(realm: string): Promise<{ keys: RealmPublicJwk[] }>;
  /** Reloads the index if another process changed it; returns a number that changes with the key set. */
  refresh(realm: string): Promise<number>;
}

const REALM = /^[a-z0-9-]{1,63}$/;
const KID = /^[A-Za-z0-9_-]{43}$/;

function checkRealm(realm: string): void {
  if (!REALM.test(realm)) throw new IsohostError('invalid_request', 'realm must match [a-z0-9-]{1,63}');
}

function publicOf(kid: string, jwk: JWK): RealmPublicJwk {
  return { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x), kid, alg: 'EdDSA', use: 'sig' };
}

/**
 * @example
 * const keys = createRealmKeyStore('./data');
 * const { kid } = await keys.rotate('bu-a');
 * const jwks = await keys.publicJwks('bu-a'); // served at /realms/bu-a/.well-known/jwks.json
 */
export function createRealmKeyStore(dataDir: string, options: { recheckMs?: number } = {}): RealmKeyStore {
  const recheckMs = options.recheckMs ?? 1000;
  const states = new Map<string, RealmState>();
  const locks = new Map<string, Promise<unknown>>();
  let generations = 0;

  const dirOf = (realm: string) => join(dataDir, 'realms', realm);
  const indexOf = (realm: string) => join(dirOf(realm), 'keys.json');
  const keyFile = (realm: string, kid: string) => {
    if (!KID.test(kid)) throw new IsohostError('config_invalid', `realm ${realm}: keys.json holds a malformed kid`);
    return join(dirOf(realm), `${kid}.jwk.json`);
  };

  /** Serialises mutations per realm inside this process. */
  function locked<T>(realm: string, fn: () => Promise<T>): Promise<T> {
    const run = (locks.get(realm) ?? Promise.resolve()).then(fn, fn);
    locks.set(realm, run.catch(() => undefined));
    return run;
  }

  async function stampOf(realm: string): Promise<string | undefined> {
    try {
      const s = await stat(indexOf(realm));
      return `${s.ino}:${s.mtimeMs}:${s.size}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async function newKey(realm: string): Promise<RealmKeyEntry> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'sha256');
    const file = keyFile(realm, kid);
    // 'wx' + 0600: never overwrite, never world-readable (chmod again in case of an odd umask).
    await writeFile(file, JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d, kid }), { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
    return { kid, created_at: new Date().toISOString(), status: 'active' };
  }

  async function writeTemp(realm: string, entries: RealmKeyEntry[]): Promise<string> {
    const tmp = `${indexOf(realm)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ keys: entries }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return tmp;
  }

  async function writeIndex(realm: string, entries: RealmKeyEntry[]): Promise<void> {
    await rename(await writeTemp(realm, entries), indexOf(realm)); // atomic: readers see old or new
  }

  async function readIndex(realm: string): Promise<RealmKeyEntry[]> {
    const raw = JSON.parse(await readFile(indexOf(realm), 'utf8')) as { keys?: unknown };
    if (!Array.isArray(raw.keys)) throw new IsohostError('config_invalid', `realm ${realm}: keys.json has no "keys" array`);
    return raw.keys.map((e: RealmKeyEntry) => {
      keyFile(realm, e.kid);
      if (e.status !== 'active' && e.status !== 'retired') throw new IsohostError('config_invalid', `realm ${realm}: bad key status`);
      return { kid: e.kid, created_at: String(e.created_at), status: e.status };
    });
  }

  async function load(realm: string): Promise<RealmState> {
    let stamp = await stampOf(realm);
    if (stamp === undefined) {
      await mkdir(dirOf(realm), { recursive: true, mode: 0o700 });
      // First use: create the index exclusively so two processes cannot both seed a realm.
      const first = await newKey(realm);
      // link(2) is atomic and fails with EEXIST: readers never see a half-written index.
      const tmp = await writeTemp(realm, [first]);
      try {
        await link(tmp, indexOf(realm));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        await unlink(keyFile(realm, first.kid)); // lost the race: use the winner's key
      } finally {
        await unlink(tmp);
      }
      stamp = await stampOf(realm);
    }
    const entries = await readIndex(realm);
    const privateJwks = new Map<string, JWK>();
    for (const e of entries) {
      if (e.status === 'retired') continue;
      privateJwks.set(e.kid, JSON.parse(await readFile(keyFile(realm, e.kid), 'utf8')) as JWK);
    }
    const state: RealmState = { entries, privateJwks, stamp: stamp ?? '', checkedAt: Date.now(), generation: ++generations };
    states.set(realm, state);
    return state;
  }

  async function current(realm: string): Promise<RealmState> {
    checkRealm(realm);
    const state = states.get(realm);
    if (state === undefined) return locked(realm, async () => states.get(realm) ?? load(realm));
    if (Date.now() - state.checkedAt < recheckMs) return state;
    state.checkedAt = Date.now();
    if ((await stampOf(realm)) === state.stamp) return state;
    return locked(realm, () => load(realm));
  }

  return {
    async signingKey(realm) {
      const state = await current(realm);
      const active = state.entries.filter((e) => e.status === 'active').at(-1);
      if (active === undefined) throw new IsohostError('invalid_request', `realm ${realm} has no active key; rotate it`);
      return { kid: active.kid, key: (await importJWK(state.privateJwks.get(active.kid)!, 'EdDSA')) as CryptoKey };
    },
    async rotate(realm) {
      await current(realm);
      return locked(realm, async () => {
        const state = await load(realm);
        const entry = await newKey(realm);
        await writeIndex(realm, [...state.entries, entry]);
        await load(realm);
        return entry;
      });
    },
    async retire(realm, kid) {
      await current(realm);
      return locked(realm, async () => {
        const state = await load(realm);
        const entry = state.entries.find((e) => e.kid === kid);
        if (entry === undefined) throw new IsohostError('invalid_request', `realm ${realm} has no key ${kid.slice(0, 64)}`);
        const signing = state.entries.filter((e) => e.status === 'active').at(-1);
        if (signing?.kid === kid) throw new IsohostError('invalid_request', 'cannot retire the current signing key; rotate first');
        const retired: RealmKeyEntry = { ...entry, status: 'retired' };
        await writeIndex(realm, state.entries.map((e) => (e.kid === kid ? retired : e)));
        await unlink(keyFile(realm, kid)).catch(() => undefined);
        await load(realm);
        return retired;
      });
    },
    async list(realm) {
      return (await current(realm)).entries.map((e) => ({ ...e }));
    },
    async publicJwks(realm) {
      const state = await current(realm);
      const keys = state.entries.filter((e) => e.status === 'active').map((e) => publicOf(e.kid, state.privateJwks.get(e.kid)!));
      return { keys };
    },
    async refresh(realm) {
      return (await current(realm)).generation;
    },
  };
}
