/**
 * The real HTTP API (buildServer, driven with inject) over a config file and a data_dir
 * the test prepared itself — for faults that must exist before the host opens its stores
 * (a corrupt tenant database, a full disk) and for an egress proxy in another process.
 * `serve` wires the same parts: loadConfig → startEgress → openPlatform → createIdentity →
 * buildServer.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { startEgress, type Egress } from '../../src/egress/wiring.ts';
import { buildServer } from '../../src/http/server.ts';
import { createIdentity } from '../../src/identity/registry.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { bearer, jsonBody } from './http-server.ts';

export interface SecurityServer {
  platform: Platform;
  egress: Egress | undefined;
  inject: (opts: InjectOptions) => Promise<LightMyRequestResponse>;
  /** PUT a bundle for `tenant` (any status: faults are what is tested). */
  deploy(tenant: string, app: string, source: string): Promise<LightMyRequestResponse>;
  /** POST a one-shot call with `args` as the JSON body. */
  oneShot(tenant: string, app: string, method: string, args?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Opens the host on `configFile`; with `egress`, fetches go through startEgress (in-process or external proxy). */
export async function startServerOn(configFile: string, options: { egress?: boolean } = {}): Promise<SecurityServer> {
  const config = loadConfig(configFile);
  const logger = pino({ level: 'silent' });
  const egress = options.egress ? await startEgress(config, { logger }) : undefined;
  const platform = await openPlatform(config, { logger, ...(egress ? { fetchBinding: egress.fetchBinding } : {}) });
  const identity = createIdentity({ dataDir: config.deployment.data_dir, tenants: config.tenants });
  const app = await buildServer({ platform, identity, logger });
  const inject: SecurityServer['inject'] = (opts) => app.inject(opts) as Promise<LightMyRequestResponse>;
  const token = (tenant: string) => identity.mint(tenant, { sub: 'alice', scope: 'apps:call apps:deploy', ttl: '1h' });
  return {
    platform,
    egress,
    inject,
    async deploy(tenant, appId, source) {
      return inject({
        method: 'PUT',
        url: `/v1/tenants/${tenant}/apps/${appId}`,
        headers: { ...bearer(await token(tenant)), 'content-type': 'application/javascript' },
        payload: source,
      });
    },
    async oneShot(tenant, appId, method, args) {
      const body = jsonBody(args ?? null);
      return inject({ method: 'POST', url: `/v1/tenants/${tenant}/apps/${appId}/calls/${method}`, ...body, headers: { ...body.headers, ...bearer(await token(tenant)) } });
    },
    async close() {
      await app.close();
      await platform.close();
      await egress?.close();
    },
  };
}
