/**
 * A real isohost platform for tests: a config validated by the real schema, real
 * LevelDB directories in a temp folder, real isolates. Dispose closes everything and
 * removes the folder.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { versionOf } from '../../src/apps/bundle.ts';
import { validateConfig } from '../../src/config/load.ts';
import { openPlatform, type Platform, type PlatformOptions } from '../../src/platform.ts';
import type { AppBundle } from '../../src/sandbox/instance-host.ts';
import { tempDir } from './tmp.ts';

export interface TestTenant {
  id: string;
  namespace?: string;
  isolation?: 'schema' | 'database';
  limits?: Record<string, number>;
  allow?: string[];
}

export function testConfigObject(dataDir: string, tenants: TestTenant[]) {
  return {
    deployment: { data_dir: dataDir, warm_pool: 1 },
    tenants: tenants.map((t) => ({
      id: t.id,
      storage: { namespace: t.namespace ?? t.id, isolation: t.isolation ?? 'schema' },
      identity: { provider: 'iam-internal', realm: t.id },
      network: { default: 'deny', allow: t.allow ?? [] },
      limits: t.limits ?? {},
    })),
  };
}

export async function startTestPlatform(tenants: TestTenant[], options: PlatformOptions = {}): Promise<Platform & { dataDir: string; dispose(): Promise<void> }> {
  const dir = await tempDir();
  const config = validateConfig(testConfigObject(dir.path, tenants), dir.path);
  const platform = await openPlatform(config, { logger: pino({ level: 'silent' }), ...options });
  return Object.assign(platform, {
    dataDir: dir.path,
    async dispose() {
      await platform.close();
      await dir.dispose();
    },
  });
}

export function appBundle(id: string, source: string): AppBundle {
  const sha256 = createHash('sha256').update(source).digest('hex');
  return { id, version: versionOf(sha256), source, sha256 };
}

/** Launches `source` as app `appId` for `tenantId` (user `sub`), calls `method`, returns the parsed result. */
export async function callOnce(platform: Platform, tenantId: string, appId: string, source: string, method: string, args: unknown = null, sub: string | null = null): Promise<any> {
  const tenant = platform.tenants.get(tenantId);
  const user = sub === null ? null : { sub, claims: {} };
  const { info } = await platform.host.launch(tenant, appBundle(appId, source), user);
  try {
    return JSON.parse(await platform.host.call(tenant, sub, info.id, method, JSON.stringify(args)));
  } finally {
    try {
      platform.host.dispose(tenant, sub, info.id);
    } catch {
      // already gone (disposed by a limit breach)
    }
  }
}
