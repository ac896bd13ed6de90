/**
 * The proxy as started from a validated config (`isohost egress-proxy`, `serve`, `run`):
 * key file under data_dir shared by both halves, rules from `network.allow`.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type PlatformConfig, configSchema } from '../../src/config/schema.ts';
import { runEgressProxyProcess } from '../../src/egress/main.ts';
import { startEgress } from '../../src/egress/wiring.ts';
import type { TenantContext } from '../../src/tenants/context.ts';
import { IsohostError } from '../../src/errors.ts';
import { startUpstream, testScope } from '../helpers/egress-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => { for (const d of disposers.splice(0).reverse()) await d(); });

async function configWith(allow: string[], extra: Record<string, unknown> = {}): Promise<PlatformConfig> {
  const dir = await tempDir();
  disposers.push(dir.dispose);
  return configSchema.parse({
    deployment: { data_dir: join(dir.path, 'data'), egress_proxy: { host: '127.0.0.1', port: 0, ...extra } },
    tenants: [
      { id: 'bu-a', storage: { namespace: 'bu-a', isolation: 'schema' }, identity: { provider: 'iam-internal', realm: 'bu-a' }, network: { allow } },
      { id: 'acme', storage: { namespace: 'acme', isolation: 'database' }, identity: { provider: 'iam-internal', realm: 'acme' } },
    ],
  });
}

const tenant = (config: PlatformConfig, id: string) => {
  const t = config.tenants.find((x) => x.id === id)!;
  return { id, config: t, limits: t.limits, logger: pino({ level: 'silent' }) } as unknown as TenantContext;
};

describe('egress wiring', () => {
  it('should start the proxy from config and let the fetch binding through, per tenant', async () => {
    const up = await startUpstream('up');
    disposers.push(up.close);
    const config = await configWith([`127.0.0.1:${up.port}`]);
    const egress = await startEgress(config, { logger: pino({ level: 'silent' }) });
    disposers.push(egress.close);
    expect((await stat(join(config.deployment.data_dir, 'egress.key'))).mode & 0o777).toBe(0o600);
    const scope = testScope();
    const reply = await egress.fetchBinding(tenant(config, 'bu-a')).handle('fetch', { url: `${up.origin}/hi` }, undefined, scope);
    expect(JSON.parse(reply.json).status).toBe(200);
    const denied = await egress.fetchBinding(tenant(config, 'acme')).handle('fetch', { url: `${up.origin}/hi` }, undefined, testScope()).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(IsohostError);
    expect((denied as IsohostError).code).toBe('egress_denied');
    scope.end();
  });

  it('should refuse to start with an invalid rule, naming it', async () => {
    const config = await configWith(['ok.example']);
    const bad = { ...config, tenants: [{ ...config.tenants[0], network: { default: 'deny' as const, allow: ['127.1'] } }] };
    await expect(runEgressProxyProcess(bad, { logger: pino({ level: 'silent' }) })).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringContaining('"127.1"') });
  });

  it('should not start a proxy when it is external, and point the binding at the configured one', async () => {
    const config = await configWith([], { port: 1, external: true });
    const egress = await startEgress(config, { logger: pino({ level: 'silent' }) });
    disposers.push(egress.close);
    expect(egress.proxyUrl).toBe('http://127.0.0.1:1');
  });
});
