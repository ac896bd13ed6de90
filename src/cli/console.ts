/**
 * `isohost console [--open] [--sub NAME] [--ttl 30m] [--url BASE]`: mints a short-lived token
 * of the operator realm (`deployment.operator_realm`) with the admin scopes and prints the
 * console's address with the token in the URL fragment (`#token=…`): a fragment is never
 * sent to a server, so the token stays out of access logs and Referer headers. The console
 * is on the ops listener when `deployment.ops_listen` is set, else on the API listener.
 */
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import type { PlatformConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import { ADMIN_SCOPES } from '../http/routes/admin-auth.ts';
import { openKeyStore } from '../identity/key-store.ts';
import { createIdentity } from '../identity/registry.ts';
import { configFrom, parse, UsageError } from './args.ts';

/** The console's address for a config: its listener, a wildcard host replaced by loopback. */
export function consoleBase(config: PlatformConfig): string {
  const { host, port } = config.deployment.ops_listen ?? config.deployment.listen;
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}/console/`;
}

export async function consoleCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { open: { type: 'boolean' }, sub: { type: 'string' }, ttl: { type: 'string' }, url: { type: 'string' } });
  const config = configFrom(values);
  const realm = config.deployment.operator_realm;
  if (realm === undefined) throw new IsohostError('config_invalid', 'the console signs in with the operator realm: set deployment.operator_realm');
  if (values.url !== undefined && !/^https?:\/\//.test(values.url)) throw new UsageError('--url must be an http(s) URL of the listener serving /console/');
  const keys = openKeyStore(config);
  try {
    const identity = createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants, operatorRealm: realm, fetchJwks: async () => ({ keys: [] }), keys: keys.realms });
    const sub = values.sub ?? `console-${userInfo().username}`;
    const token = await identity.mintInRealm(realm, { sub, scope: ADMIN_SCOPES.join(' '), ttl: values.ttl ?? '30m' });
    const base = values.url === undefined ? consoleBase(config) : new URL('/console/', values.url).href;
    const url = `${base}#token=${token}`;
    process.stdout.write(url + '\n');
    if (values.open === true) openBrowser(url);
  } finally {
    await keys.close();
  }
  return 0;
}

/** Hands the URL to the desktop's opener; a machine without one still has the printed URL. */
function openBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [url], { detached: true, stdio: 'ignore' });
  child.on('error', () => process.stderr.write(JSON.stringify({ level: 40, msg: `could not run ${opener}; open the URL above by hand` }) + '\n'));
  child.unref();
}
