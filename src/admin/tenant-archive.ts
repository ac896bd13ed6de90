/**
 * The one tenant export and the one tenant import (format: archive-format.ts), used by the
 * admin socket of a running server (socket.ts) and by `isohost tenant export|import` on
 * stores the CLI opens itself: both paths give the same lines and write the same records.
 *
 * Export reads each part from the live store (app data through one LevelDB iterator, i.e.
 * one snapshot); writes that land during an export may or may not be in it.
 *
 * Import reads its input twice: a first pass validates every line, the order, the trailer
 * and the tenant's storage quota and writes nothing; only then a second pass writes. A bad
 * file (truncated, tampered, over quota) therefore leaves the tenant as it was. The input
 * must not change between the passes (the socket spools it to a file of its own).
 */
import { IsohostError } from '../errors.ts';
import { bundleStoredBytes, type AppRecord, type AppRegistry } from '../apps/registry.ts';
import type { BundleSource } from '../apps/bundle.ts';
import type { RealmPublicJwk } from '../identity/realm-keys.ts';
import type { BatchOp } from '../storage/backend.ts';
import { MAX_BATCH_BYTES, MAX_BATCH_OPS, utf8Bytes } from '../storage/key-codec.ts';
import type { TenantContext } from '../tenants/context.ts';
import { ARCHIVE_FORMAT, ARCHIVE_KIND, parseLine, type AppLine, type ParsedLine } from './archive-format.ts';

/** Where an export reads from and an import writes to: one tenant of one platform. */
export interface ArchiveTarget {
  readonly tenant: TenantContext;
  readonly apps: AppRegistry;
  /** `deployment.max_bundle_bytes` of the platform: an import cannot bring a larger bundle. */
  readonly maxBundleBytes: number;
}

export interface ExportSource extends ArchiveTarget {
  /** Public JWKS of an iam-internal realm (creates the realm's first key if it has none yet). */
  realmJwks(realm: string): Promise<{ keys: RealmPublicJwk[] }>;
  /** Names the exporting node in the header. */
  readonly node: string;
}

export interface ImportSummary {
  tenant: string;
  /** The tenant id in the export's header. */
  from: string;
  apps: number;
  versions: number;
  entries: number;
  /** Realm public keys in the file, not imported: the target realm keeps its own keys. */
  realm_keys_ignored: number;
}

/** The longest line a valid export can hold: a bundle whose every character is escaped (`\u0001`). */
export function maxLineBytes(maxBundleBytes: number): number {
  return 6 * maxBundleBytes + 1024 * 1024;
}

/**
 * The tenant's export, one NDJSON line (with its `\n`) per yield.
 *
 * @example
 * for await (const line of exportTenant({ tenant, apps: platform.apps, maxBundleBytes, realmJwks, node })) out.write(line);
 */
export async function* exportTenant(src: ExportSource): AsyncGenerator<string> {
  const { tenant } = src;
  const out = (value: unknown) => `${JSON.stringify(value)}\n`;
  // Keys and app records are read before the header is yielded: a store that fails, fails
  // before the socket has sent its 200 (the caller then gets the coded error).
  const identity = tenant.config.identity;
  const keys = identity.provider === 'iam-internal' ? (await src.realmJwks(identity.realm)).keys : [];
  const records = await src.apps.list(tenant);
  yield out({ kind: ARCHIVE_KIND, format: ARCHIVE_FORMAT, tenant: tenant.id, exported_at: new Date().toISOString(), node: src.node });
  let entries = 0;
  for (const key of keys) {
    entries++;
    yield out({ kind: 'realm_key', realm: identity.realm, ...key });
  }
  for (const record of records) {
    entries++;
    yield out({ kind: 'app', app: record.app, record });
    for (const v of record.versions) {
      const source = await src.apps.bundleSource(tenant, v.sha256);
      if (source === undefined) throw new IsohostError('storage_error', `bundle of "${record.app}" version ${v.version} is missing from the tenant store`);
      entries++;
      yield out({ kind: 'bundle', app: record.app, sha256: v.sha256, size: v.size, source });
    }
  }
  for await (const e of tenant.store.exportEntries()) {
    entries++;
    // The stored value is JSON text already: spliced in, not parsed and printed again.
    yield `{"kind":"data","app":${JSON.stringify(e.app)},"key":${JSON.stringify(e.key)},"value":${e.value}}\n`;
  }
  yield out({ kind: 'end', entries });
}

/**
 * Validates the whole input (first pass), then writes it into `target` (second pass).
 * `lines()` must give the same lines each time it is called.
 */
export async function importTenant(target: ArchiveTarget, lines: () => AsyncIterable<string>): Promise<ImportSummary> {
  const summary = await checkArchive(target, lines());
  await writeArchive(target, lines());
  return summary;
}

/** Parses every line in order, enforcing the rules that span lines; yields each checked line. */
async function* readArchive(input: AsyncIterable<string>, maxBundleBytes: number): AsyncGenerator<ParsedLine> {
  let number = 0;
  let ended = false;
  let group: { app: AppLine; pending: Set<string> } | null = null;
  const apps = new Set<string>();
  const closeGroup = () => {
    if (group !== null && group.pending.size > 0) {
      throw new IsohostError('invalid_request', `export line ${number}: app "${group.app.app}" lacks the bundle of ${group.pending.size} version(s)`);
    }
    group = null;
  };
  for await (const text of input) {
    number++;
    if (ended) throw new IsohostError('invalid_request', `export line ${number}: data after the "end" trailer`);
    const l = parseLine(text, number, maxBundleBytes);
    if ((number === 1) !== (l.kind === ARCHIVE_KIND)) {
      throw new IsohostError('invalid_request', number === 1 ? 'not an isohost tenant export: the first line is not its header' : `export line ${number}: a second header`);
    }
    if (l.kind === 'bundle') {
      if (group === null || group.app.app !== l.app || !group.pending.delete(l.sha256)) {
        throw new IsohostError('invalid_request', `export line ${number}: bundle ${l.sha256} does not follow an app line with that version`);
      }
    } else {
      closeGroup();
    }
    if (l.kind === 'app') {
      if (apps.has(l.app)) throw new IsohostError('invalid_request', `export line ${number}: app "${l.app}" appears twice`);
      apps.add(l.app);
      group = { app: l, pending: new Set(l.record.versions.map((v) => v.sha256)) };
    }
    if (l.kind === 'end') {
      if (l.entries !== number - 2) throw new IsohostError('invalid_request', `export line ${number}: the trailer counts ${l.entries} entries, the file holds ${number - 2}`);
      ended = true;
    }
    yield l;
  }
  if (!ended) throw new IsohostError('invalid_request', `export is truncated: ${number === 0 ? 'it is empty' : 'no "end" trailer'}`);
}

/** First pass: every check, the quota included; writes nothing. */
async function checkArchive(target: ArchiveTarget, input: AsyncIterable<string>): Promise<ImportSummary> {
  const { tenant } = target;
  const summary: ImportSummary = { tenant: tenant.id, from: '', apps: 0, versions: 0, entries: 0, realm_keys_ignored: 0 };
  const keys = new Set<string>();
  const bundles = new Set<string>();
  let growth = 0;
  for await (const l of readArchive(input, target.maxBundleBytes)) {
    if (l.kind === ARCHIVE_KIND) summary.from = l.tenant;
    else if (l.kind === 'realm_key') summary.realm_keys_ignored++;
    else if (l.kind === 'app') {
      summary.apps++;
      summary.versions += l.record.versions.length;
      // Platform records count against storage_mb too (THREATS F47): the app record…
      const old = await tenant.store.system().get(`app:${l.app}`);
      growth += utf8Bytes(`app:${l.app}`) + utf8Bytes(JSON.stringify(l.record)) - (old === undefined ? 0 : utf8Bytes(`app:${l.app}`) + utf8Bytes(old));
    } else if (l.kind === 'bundle') {
      // …and every bundle the store does not hold yet (a bundle is stored once per sha256).
      if (!bundles.has(l.sha256) && (await tenant.store.system().get(`bundle:${l.sha256}`)) === undefined) {
        growth += bundleStoredBytes({ source: l.source, sha256: l.sha256, size: l.size });
      }
      bundles.add(l.sha256);
    } else if (l.kind === 'data') {
      const id = `${l.app}\u0000${l.key}`;
      if (keys.has(id)) throw new IsohostError('invalid_request', `export holds the key "${l.key.slice(0, 64)}" of app "${l.app}" twice`);
      keys.add(id);
      summary.entries++;
      const old = await tenant.store.app(l.app).get(l.key);
      growth += utf8Bytes(l.key) + utf8Bytes(l.value) - (old === undefined ? 0 : utf8Bytes(l.key) + utf8Bytes(old));
    }
  }
  // The same quota the store enforces on every write (tenants/registry.ts); checked up front
  // so an import that cannot fit writes nothing.
  const quota = Math.floor(tenant.limits.storage_mb * 1024 * 1024);
  if (tenant.store.usageBytes() + growth > quota) {
    throw new IsohostError('resource_exhausted', `storage quota exceeded: the import needs ${growth} more bytes; ${tenant.store.usageBytes()} of ${quota} are used`);
  }
  return summary;
}

/** Second pass: app records with their bundles, then data in batches per app. */
async function writeArchive(target: ArchiveTarget, input: AsyncIterable<string>): Promise<void> {
  const { tenant, apps } = target;
  let app: { record: AppRecord; bundles: Map<string, BundleSource> } | null = null;
  let batch: { app: string; ops: BatchOp[]; bytes: number } | null = null;
  const flushApp = async () => {
    if (app !== null) await apps.restore(tenant, app.record, app.bundles);
    app = null;
  };
  const flushData = async () => {
    if (batch !== null && batch.ops.length > 0) await tenant.store.app(batch.app).batch(batch.ops);
    batch = null;
  };
  for await (const l of readArchive(input, target.maxBundleBytes)) {
    if (l.kind === 'bundle') {
      app!.bundles.set(l.sha256, { source: l.source, sha256: l.sha256, size: l.size });
      continue;
    }
    await flushApp();
    if (l.kind === 'app') app = { record: l.record as AppRecord, bundles: new Map() };
    if (l.kind !== 'data') continue;
    const bytes = utf8Bytes(l.key) + utf8Bytes(l.value);
    if (batch !== null && (batch.app !== l.app || batch.ops.length === MAX_BATCH_OPS || batch.bytes + bytes > MAX_BATCH_BYTES)) await flushData();
    batch ??= { app: l.app, ops: [], bytes: 0 };
    batch.ops.push({ op: 'set', key: l.key, value: l.value });
    batch.bytes += bytes;
  }
  await flushApp();
  await flushData();
}
