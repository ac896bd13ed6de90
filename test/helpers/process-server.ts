/**
 * The real isohost HTTP API on a real loopback port, with `compute: process` tenants:
 * the real config schema, LevelDB in a temp dir, the real egress proxy (startEgress),
 * real sandbox processes, real JWTs; log lines captured for assertions. `serve` wires
 * the same parts: startEgress → openPlatform → createIdentity → buildServer → listen.
 */
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { validateConfig } from '../../src/config/load.ts';
import type { PlatformConfig } from '../../src/config/schema.ts';
import { startEgress, type Egress } from '../../src/egress/wiring.ts';
import { buildServer } from '../../src/http/server.ts';
import { createIdentity, type Identity } from '../../src/identity/registry.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import type { ProcessTier } from '../../src/sandbox/process-tier.ts';
import { tempDir } from './tmp.ts';

export interface ProcessTestTenant {
  id: string;
  compute?: 'shared' | 'process';
  /** `compute.priority` of a process tenant. */
  priority?: 'low' | 'idle';
  limits?: Record<string, number>;
  allow?: string[];
}

export interface ProcessServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  app: FastifyInstance;
  platform: Platform;
  identity: Identity;
  egress: Egress;
  dataDir: string;
  /** Every log line written so far (host, tenants, sandbox supervision). */
  logs: Record<string, unknown>[];
  /** The process tier of a process tenant. */
  tier(tenant: string): ProcessTier;
  token(tenant: string, sub?: string): Promise<string>;
  /** PUT a bundle; throws unless 201. */
  deploy(tenant: string, app: string, source: string): Promise<void>;
  /** POST a one-shot call over HTTP; resolves with status and parsed body. */
  call(tenant: string, app: string, method: string, args?: unknown): Promise<{ status: number; body: any }>;
  get(path: string, timeoutMs?: number): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** The validated config these tests run on; also what a test reloads the platform with (`platform.reconfigure`). */
export function processConfig(tenants: ProcessTestTenant[], dataDir: string, deployment: Record<string, unknown> = {}): PlatformConfig {
  return validateConfig(
    {
      deployment: { data_dir: dataDir, warm_pool: 1, ...deployment },
      tenants: tenants.map((t) => ({
        id: t.id,
        storage: { namespace: t.id, isolation: 'database' },
        identity: { provider: 'iam-internal', realm: t.id },
        network: { default: 'deny', allow: t.allow ?? [] },
        limits: t.limits ?? {},
        compute: { isolation: t.compute ?? 'shared', ...(t.priority === undefined ? {} : { priority: t.priority }) },
      })),
    },
    dataDir,
  );
}

export async function startProcessServer(tenants: ProcessTestTenant[], deployment: Record<string, unknown> = {}): Promise<ProcessServer> {
  const dir = await tempDir('isohost-proc-');
  const config = processConfig(tenants, dir.path, deployment);
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const registry = new Registry();
  const egress = await startEgress(config, { logger, metrics: registry });
  const platform = await openPlatform(config, { logger, fetchBinding: egress.fetchBinding });
  const identity = createIdentity({ dataDir: dir.path, tenants: config.tenants });
  const app = await buildServer({ platform, identity, logger, registry });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = (tenant: string, sub = 'alice') => identity.mint(tenant, { sub, scope: 'apps:call apps:deploy', ttl: '1h' });
  const request = async (method: string, path: string, headers: Record<string, string>, body?: string, timeoutMs = 30_000) => {
    const res = await fetch(`${url}${path}`, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics text)
    }
    return { status: res.status, body: parsed as any };
  };
  return {
    url,
    app,
    platform,
    identity,
    egress,
    dataDir: dir.path,
    logs,
    tier(tenant) {
      const tier = platform.sandboxes.get(tenant);
      if (tier === undefined) throw new Error(`${tenant} is not a process tenant`);
      return tier;
    },
    token,
    async deploy(tenant, appId, source) {
      const res = await request('PUT', `/v1/tenants/${tenant}/apps/${appId}`, { authorization: `Bearer ${await token(tenant, 'deployer')}`, 'content-type': 'application/javascript' }, source);
      if (res.status !== 201) throw new Error(`deploy ${tenant}/${appId}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async call(tenant, appId, method, args = null) {
      return request('POST', `/v1/tenants/${tenant}/apps/${appId}/calls/${method}`, { authorization: `Bearer ${await token(tenant)}`, 'content-type': 'application/json' }, JSON.stringify(args));
    },
    get: (path, timeoutMs) => request('GET', path, {}, undefined, timeoutMs),
    async close() {
      await app.close();
      await platform.close();
      await egress.close();
      await dir.dispose();
    },
  };
}

/** Polls `check` every 20 ms until it returns true (or throws after `ms`). */
export async function until(check: () => boolean | Promise<boolean>, ms = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
