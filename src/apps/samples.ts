/**
 * Deploys the sample mini-apps (sample-miniapps/<name>/<name>.js) to every tenant that
 * does not have them yet — what `serve` does on first start so a newcomer has
 * something to call.
 */
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Platform } from '../platform.ts';
import { readBundle } from './bundle.ts';
import { validateBundle } from './validate.ts';
import { IsohostError } from '../errors.ts';

const SAMPLES_DIR = fileURLToPath(new URL('../../sample-miniapps/', import.meta.url));

export async function deploySamples(platform: Platform): Promise<{ tenant: string; app: string; version: string }[]> {
  const deployed: { tenant: string; app: string; version: string }[] = [];
  const names = (await readdir(SAMPLES_DIR, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  for (const name of names) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(SAMPLES_DIR, name, `${name}.js`));
    } catch {
      continue;
    }
    const bundle = readBundle(bytes, platform.config.deployment.max_bundle_bytes);
    for (const tenant of platform.tenants.all()) {
      try {
        if ((await platform.apps.record(tenant, name)) !== undefined) continue;
        const methods = await validateBundle(platform.host, tenant, bundle);
        const v = await platform.apps.deploy(tenant, name, bundle, methods);
        deployed.push({ tenant: tenant.id, app: name, version: v.version });
      } catch (err) {
        // A tenant whose store is broken fails alone (THREATS E39); the host still starts.
        if (!(err instanceof IsohostError) || err.code !== 'storage_error') throw err;
        tenant.logger.warn({ app: name, code: err.code }, 'sample not deployed: the tenant store failed');
      }
    }
  }
  return deployed;
}
