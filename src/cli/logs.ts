/**
 * `isohost logs --tenant ID [--app ID] [--follow] [--server URL]`: prints a tenant's log
 * stream (`GET /v1/tenants/:tenant/logs`, scope logs:read) as the NDJSON the server sends,
 * line by line as it arrives. The token comes from `ISOHOST_TOKEN`, never a flag (shell
 * history, `ps`). With `--follow` it runs until the server ends the stream or the user
 * interrupts it (exit 0 either way).
 */
import { checkAppId } from '../apps/registry.ts';
import { IsohostError, isErrorCode } from '../errors.ts';
import { parse, required, UsageError } from './args.ts';
import { serverUrl } from './deploy.ts';

/** The server's `{ error: { code, message } }` as an IsohostError; anything else is `unavailable`. */
async function serverError(res: Response): Promise<IsohostError> {
  const text = await res.text().catch(() => '');
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e !== undefined && isErrorCode(e.code) && typeof e.message === 'string') return new IsohostError(e.code, e.message);
  } catch {
    // not JSON: not an isohost server
  }
  return new IsohostError('unavailable', `the server answered ${res.status} ${res.statusText} without an isohost error`);
}

export async function logsCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { tenant: { type: 'string' }, app: { type: 'string' }, follow: { type: 'boolean' }, server: { type: 'string' } });
  const tenant = required(values, 'tenant');
  if (values.app !== undefined) {
    try {
      checkAppId(values.app);
    } catch {
      throw new UsageError(`--app "${values.app}" must match [a-z0-9][a-z0-9-]{0,62}`);
    }
  }
  const token = process.env.ISOHOST_TOKEN?.trim();
  if (token === undefined || token === '') throw new UsageError('ISOHOST_TOKEN is not set: put a token with scope logs:read in it (isohost token … --scope logs:read)');
  const server = serverUrl(values.server);
  const url = new URL(`v1/tenants/${encodeURIComponent(tenant)}/logs`, server.href.endsWith('/') ? server : `${server.href}/`);
  if (values.app !== undefined) url.searchParams.set('app', values.app);
  if (values.follow === true) url.searchParams.set('follow', 'true');

  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' }, signal: stop.signal });
    } catch (err) {
      if (stop.signal.aborted) return 0;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new IsohostError('unavailable', `cannot reach ${server.origin}: ${cause?.code ?? cause?.message ?? 'connection failed'}`);
    }
    if (!res.ok) throw await serverError(res);
    if (res.body === null) return 0;
    try {
      // Bytes pass through as they come: the server writes whole lines, and stdout keeps their order.
      for await (const chunk of res.body) process.stdout.write(chunk);
    } catch (err) {
      if (!stop.signal.aborted) throw new IsohostError('unavailable', `the log stream broke: ${(err as Error).message}`);
    }
    return 0;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}
