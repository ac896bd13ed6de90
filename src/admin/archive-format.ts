/**
 * The tenant export format, version 1: NDJSON, one JSON object per line, in this order.
 *
 *   {"kind":"isohost-tenant-export","format":1,"tenant":"bu-a","exported_at":"2026-…Z","node":"host-1"}
 *   {"kind":"realm_key","realm":"bu-a","kty":"OKP","crv":"Ed25519","x":"…","kid":"…","alg":"EdDSA","use":"sig"}
 *   {"kind":"app","app":"notes","record":{"app":"notes","active":"…","versions":[{"version","sha256","size","methods","created_at"}]}}
 *   {"kind":"bundle","app":"notes","sha256":"…","size":1234,"source":"export async function …"}
 *   {"kind":"data","app":"notes","key":"note:1","value":{"text":"hello"}}
 *   {"kind":"end","entries":5}
 *
 * - `realm_key`: the public keys (never a private member) of the tenant's iam-internal realm;
 *   none for an external identity provider, whose keys belong to its issuer. Informational on
 *   import: the importing platform signs and verifies with its own realm keys.
 * - `app`: one per deployed app, its record as the registry keeps it (versions, active one),
 *   followed at once by one `bundle` line per version: the whole source, checked against its
 *   sha256 and size on import.
 * - `data`: every entry of every app keyspace, app by app in key order.
 * - `end`: the trailer; `entries` counts the lines between the header and it, so a truncated
 *   file is refused.
 *
 * Every line is validated here (zod, strict objects) before import writes anything.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { IsohostError } from '../errors.ts';
import { versionOf } from '../apps/bundle.ts';
import { assertKey, assertValue } from '../storage/key-codec.ts';

export const ARCHIVE_KIND = 'isohost-tenant-export';
export const ARCHIVE_FORMAT = 1;

const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
/** Deployable app ids (apps/registry.ts checkAppId). */
const APP_ID = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected an app id [a-z0-9][a-z0-9-]{0,62}');
/** App keyspace names (storage/key-codec.ts assertName): data can outlive or predate a deploy. */
const KEYSPACE = z.string().regex(/^[a-z0-9-]{1,63}$/, 'expected an app id [a-z0-9-]{1,63}');
const B64URL = z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected base64url');

const header = z.strictObject({
  kind: z.literal(ARCHIVE_KIND),
  format: z.number().int(),
  tenant: z.string().regex(/^[a-z0-9-]{1,63}$/),
  exported_at: z.string(),
  node: z.string(),
});
/** Strict: a `d` (or any other private member) in a realm key line is refused. */
const realmKey = z.strictObject({
  kind: z.literal('realm_key'),
  realm: z.string().regex(/^[a-z0-9-]{1,63}$/),
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: B64URL,
  kid: B64URL,
  alg: z.literal('EdDSA'),
  use: z.literal('sig'),
});
/** Loose: fields a newer registry adds to its records travel with them. */
const version = z.looseObject({
  version: z.string(),
  sha256: SHA256,
  size: z.number().int().positive(),
  methods: z.array(z.string()),
  created_at: z.string(),
});
const record = z.looseObject({ app: APP_ID, active: z.string(), versions: z.array(version).min(1) });
const app = z.strictObject({ kind: z.literal('app'), app: APP_ID, record });
const bundle = z.strictObject({ kind: z.literal('bundle'), app: APP_ID, sha256: SHA256, size: z.number().int().positive(), source: z.string() });
const data = z.strictObject({ kind: z.literal('data'), app: KEYSPACE, key: z.string(), value: z.unknown() });
const end = z.strictObject({ kind: z.literal('end'), entries: z.number().int().nonnegative() });
const line = z.discriminatedUnion('kind', [header, realmKey, app, bundle, data, end]);

export type ArchiveLine = z.infer<typeof line>;
export type AppLine = z.infer<typeof app>;
export type RealmKeyLine = z.infer<typeof realmKey>;
/** A data line with its value as the JSON text the store keeps. */
export type DataLine = Omit<z.infer<typeof data>, 'value'> & { value: string };
export type ParsedLine = Exclude<ArchiveLine, { kind: 'data' }> | DataLine;

function invalid(number: number, message: string): IsohostError {
  return new IsohostError('invalid_request', `export line ${number}: ${message}`);
}

/**
 * Parses and checks one line on its own: its shape, an app record's versions against their
 * sha256, a bundle's source against its sha256 and size, a data entry's key and value limits.
 * Checks that need other lines (order, trailer, duplicates) are the reader's.
 */
export function parseLine(text: string, number: number, maxBundleBytes: number): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(number, 'not JSON');
  }
  const parsed = line.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(number, `${issue.path.length === 0 ? '' : `${issue.path.join('.')}: `}${issue.message}`);
  }
  const l = parsed.data;
  switch (l.kind) {
    case ARCHIVE_KIND:
      if (l.format !== ARCHIVE_FORMAT) throw invalid(number, `format ${l.format} is not supported (this isohost reads format ${ARCHIVE_FORMAT})`);
      return l;
    case 'app':
      checkRecord(l, number);
      return l;
    case 'bundle':
      checkBundle(l, number, maxBundleBytes);
      return l;
    case 'data':
      return checkData(l, number);
    default:
      return l;
  }
}

function checkRecord(l: AppLine, number: number): void {
  if (l.record.app !== l.app) throw invalid(number, `record.app "${l.record.app}" is not "${l.app}"`);
  const seen = new Set<string>();
  for (const v of l.record.versions) {
    if (v.version !== versionOf(v.sha256)) throw invalid(number, `version ${v.version} does not match its sha256`);
    if (seen.has(v.sha256)) throw invalid(number, `version ${v.version} is listed twice`);
    seen.add(v.sha256);
  }
  if (!l.record.versions.some((v) => v.version === l.record.active)) throw invalid(number, `active version ${l.record.active} is not among the versions`);
}

function checkBundle(l: z.infer<typeof bundle>, number: number, maxBundleBytes: number): void {
  if (!l.source.isWellFormed()) throw invalid(number, 'bundle source is not well-formed Unicode');
  const bytes = Buffer.from(l.source, 'utf8');
  if (bytes.byteLength !== l.size) throw invalid(number, `bundle is ${bytes.byteLength} bytes, not the ${l.size} its line says`);
  if (bytes.byteLength > maxBundleBytes) {
    throw new IsohostError('payload_too_large', `export line ${number}: bundle is ${bytes.byteLength} bytes; the limit is ${maxBundleBytes} bytes`);
  }
  if (createHash('sha256').update(bytes).digest('hex') !== l.sha256) throw invalid(number, `bundle source does not match its sha256 ${l.sha256}`);
}

function checkData(l: z.infer<typeof data>, number: number): DataLine {
  if (l.value === undefined) throw invalid(number, 'value: required');
  let text: string;
  try {
    assertKey(l.key);
    // The line came from JSON.parse, so the value is JSON; this is the text the store keeps.
    text = JSON.stringify(l.value);
    assertValue(text);
  } catch (err) {
    if (err instanceof IsohostError) throw new IsohostError(err.code, `export line ${number}: ${err.message}`);
    throw invalid(number, 'value is nested too deeply'); // RangeError from JSON.stringify
  }
  return { kind: 'data', app: l.app, key: l.key, value: text };
}
