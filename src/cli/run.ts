/**
 * `isohost run BUNDLE --tenant ID --call METHOD [--args JSON] [--sub USER] [--app ID]`:
 * launches one instance of a bundle file for a tenant, calls one method, prints the
 * result as one JSON line. The tenant comes from the flag, resolved once here.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { readBundle, versionOf } from '../apps/bundle.ts';
import { checkAppId } from '../apps/registry.ts';
import { createLogger, openPlatform } from '../platform.ts';
import { startEgress } from '../egress/wiring.ts';
import { configFrom, parse, required, UsageError, requireTenant } from './args.ts';

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    tenant: { type: 'string' },
    call: { type: 'string' },
    args: { type: 'string' },
    sub: { type: 'string' },
    app: { type: 'string' },
  }, 1);
  const file = positionals[0];
  if (file === undefined) throw new UsageError('usage: isohost run BUNDLE --tenant ID --call METHOD [--args JSON] [--sub USER] [--app ID]');
  const tenantId = required(values, 'tenant');
  const method = required(values, 'call');
  let argsJson = 'null';
  if (values.args !== undefined) {
    try {
      argsJson = JSON.stringify(JSON.parse(values.args));
    } catch {
      throw new UsageError('--args must be JSON');
    }
  }
  const appId = values.app ?? basename(file, extname(file));
  try {
    checkAppId(appId);
  } catch {
    throw new UsageError(`--app "${appId}" must match [a-z0-9][a-z0-9-]{0,62} (it defaults to the bundle's file name)`);
  }
  const config = configFrom(values);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read bundle ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const bundle = readBundle(bytes, config.deployment.max_bundle_bytes);
  requireTenant(config, tenantId);

  const logger = createLogger();
  const egress = await startEgress(config, { ephemeralPort: true, logger: logger.child({ component: 'egress-proxy' }) });
  const platform = await openPlatform(config, { warmPool: 0, logger, fetchBinding: egress.fetchBinding });
  try {
    const tenant = platform.tenants.get(tenantId);
    const user = values.sub === undefined ? null : { sub: values.sub, claims: {} };
    const { info } = await platform.host.launch(tenant, { id: appId, version: versionOf(bundle.sha256), source: bundle.source, sha256: bundle.sha256 }, user);
    const result = await platform.host.call(tenant, user?.sub ?? null, info.id, method, argsJson);
    process.stdout.write(result + '\n');
    return 0;
  } finally {
    await platform.close();
    await egress.close();
  }
}
