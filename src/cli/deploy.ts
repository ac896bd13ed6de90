/**
 * `isohost deploy BUNDLE --tenant ID [--app ID] [--server URL]`: uploads a bundle through
 * the HTTP API (`PUT /v1/tenants/:tenant/apps/:app`, CONTRACT §4) with the token in
 * `ISOHOST_TOKEN` (scope `apps:deploy`), and prints `{ app, version, sha256, size, state }`.
 * The token is read from the environment, never a flag, so it stays out of shell history
 * and `ps`. The server's coded error is the command's own closing error line.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { checkAppId } from '../apps/registry.ts';
import { IsohostError, isErrorCode } from '../errors.ts';
import { parse, required, UsageError } from './args.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** What the server answered for an upload. */
export interface Deployed {
  app: string;
  version: string;
  sha256: string;
  size: number;
  /** `pending` while the tenant's uploads wait for review; `approved` otherwise. */
  state: string;
}

/** The server's `{ error: { code, message } }` as an IsohostError (its code when it is one of ours). */
async function serverError(res: Response): Promise<IsohostError> {
  const text = await res.text().catch(() => '');
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e !== undefined && isErrorCode(e.code) && typeof e.message === 'string') return new IsohostError(e.code, e.message, { details: { status: res.status } });
  } catch {
    // not JSON: a proxy's or another server's page
  }
  return new IsohostError('unavailable', `the server answered ${res.status} ${res.statusText} without an isohost error`, { details: { status: res.status } });
}

/** The server's base URL, checked once: http(s) only, no path beyond `/`. */
export function serverUrl(value: string | undefined): URL {
  let url: URL;
  try {
    url = new URL(value ?? DEFAULT_SERVER);
  } catch {
    throw new UsageError(`--server "${value}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--server must be an http:// or https:// URL');
  return url;
}

/**
 * Uploads `source` as `app` of `tenant`.
 *
 * @example
 * const d = await deployBundle(new URL('http://127.0.0.1:8080'), token, 'business-unit-a', 'notes', source);
 */
export async function deployBundle(server: URL, token: string, tenant: string, app: string, source: Uint8Array): Promise<Deployed> {
  const url = new URL(`v1/tenants/${encodeURIComponent(tenant)}/apps/${encodeURIComponent(app)}`, server.href.endsWith('/') ? server : `${server.href}/`);
  let res: Response;
  try {
    res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/javascript' }, body: source });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new IsohostError('unavailable', `cannot reach ${server.origin}: ${cause?.code ?? cause?.message ?? 'connection failed'}`);
  }
  if (!res.ok) throw await serverError(res);
  const body = (await res.json()) as Partial<Deployed>;
  if (typeof body.version !== 'string' || typeof body.sha256 !== 'string') throw new IsohostError('unavailable', 'the server answered the upload without a version');
  return { app: body.app ?? app, version: body.version, sha256: body.sha256, size: Number(body.size), state: typeof body.state === 'string' ? body.state : 'approved' };
}

export async function deployCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { tenant: { type: 'string' }, app: { type: 'string' }, server: { type: 'string' } }, 1);
  const file = positionals[0];
  if (file === undefined) throw new UsageError('usage: isohost deploy BUNDLE --tenant ID [--app ID] [--server URL]');
  const tenant = required(values, 'tenant');
  const app = values.app ?? basename(file, extname(file));
  try {
    checkAppId(app);
  } catch {
    throw new UsageError(`--app "${app}" must match [a-z0-9][a-z0-9-]{0,62} (it defaults to the bundle's file name)`);
  }
  const server = serverUrl(values.server);
  const token = process.env.ISOHOST_TOKEN;
  if (token === undefined || token.trim() === '') throw new UsageError('ISOHOST_TOKEN is not set: put a token with scope apps:deploy in it (isohost token … --scope apps:deploy)');
  let source: Buffer;
  try {
    source = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read bundle ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const deployed = await deployBundle(server, token.trim(), tenant, app, source);
  process.stdout.write(JSON.stringify(deployed) + '\n');
  return 0;
}
