/**
 * isohost as the console sees it (issue 14), on real loopback ports: the real config schema
 * (an operator realm, tenants with review), real LevelDB in a temp folder, real isolates, the
 * real in-process egress proxy sharing the server's metrics registry (so its decisions reach
 * the admin API, as in `serve`), real JWTs; with `ops` the admin API and the console are on an
 * ops listener of their own. Shared by the admin API tests and the browser test.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { validateConfig } from '../../src/config/load.ts';
import { startEgress, type Egress } from '../../src/egress/wiring.ts';
import { buildOpsServer } from '../../src/http/ops-server.ts';
import { ADMIN_SCOPES } from '../../src/http/routes/admin-auth.ts';
import { buildServer } from '../../src/http/server.ts';
import { createIdentity, type Identity } from '../../src/identity/registry.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { tempDir } from '../helpers/tmp.ts';
import { lineSink } from '../helpers/log-sink.ts';

export const OPERATOR_REALM = 'ops';

export interface ConsoleResponse {
  status: number;
  headers: Headers;
  text: string;
  json(): any;
}

export interface ConsoleServer {
  /** The API listener, `http://127.0.0.1:PORT`. */
  url: string;
  /** Where the admin API and the console are: the ops listener with `ops`, else `url`. */
  adminUrl: string;
  app: FastifyInstance;
  ops: FastifyInstance | null;
  platform: Platform;
  identity: Identity;
  egress: Egress;
  /** The same config as a JSON file, for the CLI (`--config`). */
  configFile: string;
  token(tenant: string, sub?: string, scope?: string): Promise<string>;
  operatorToken(scope?: string, sub?: string): Promise<string>;
  /** One request to `base` (default: the API listener); a string body is sent as a bundle. */
  api(method: string, path: string, options?: { token?: string; body?: unknown; base?: string }): Promise<ConsoleResponse>;
  logLines(): Record<string, any>[];
  dispose(): Promise<void>;
}

/** `tenants`: tenant config objects as in a config file. */
export async function startConsoleServer(tenants: Record<string, unknown>[], options: { ops?: boolean } = {}): Promise<ConsoleServer> {
  const dir = await tempDir('isohost-console-');
  const object = {
    deployment: {
      data_dir: dir.path,
      warm_pool: 1,
      operator_realm: OPERATOR_REALM,
      egress_proxy: { host: '127.0.0.1', port: 0 },
      ...(options.ops === true ? { ops_listen: { host: '127.0.0.1', port: 0 } } : {}),
    },
    tenants,
  };
  const config = validateConfig(object, dir.path);
  const configFile = join(dir.path, 'isohost.json');
  await writeFile(configFile, JSON.stringify(object));
  const lines: string[] = [];
  const sink = lineSink((line) => lines.push(line));
  const logger = pino({ level: 'info' }, sink);
  const registry = new Registry();
  const egress = await startEgress(config, { logger, metrics: registry });
  const platform = await openPlatform(config, { logger, fetchBinding: egress.fetchBinding });
  const identity = createIdentity({ dataDir: dir.path, tenants: config.tenants, operatorRealm: OPERATOR_REALM });
  const app = await buildServer({ platform, identity, registry, logger });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const ops = options.ops === true ? await buildOpsServer(app) : null;
  const adminUrl = ops === null ? url : await ops.listen({ host: '127.0.0.1', port: 0 });

  return {
    url,
    adminUrl,
    app,
    ops,
    platform,
    identity,
    egress,
    configFile,
    token: (tenant, sub = 'partner', scope = 'apps:call apps:deploy logs:read') => identity.mint(tenant, { sub, scope, ttl: '1h' }),
    operatorToken: (scope = ADMIN_SCOPES.join(' '), sub = 'operator-olga') => identity.mintInRealm(OPERATOR_REALM, { sub, scope, ttl: '1h' }),
    async api(method, path, o = {}) {
      const headers: Record<string, string> = {};
      if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (typeof o.body === 'string') {
        body = o.body;
        headers['content-type'] = 'application/javascript';
      } else if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch((o.base ?? url) + path, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
    },
    logLines: () => lines.map((l) => JSON.parse(l) as Record<string, any>),
    async dispose() {
      for (const server of [ops, app]) {
        if (server === null) continue;
        const closing = server.close();
        server.server.closeAllConnections();
        await closing;
      }
      await platform.close();
      await egress.close();
      await dir.dispose();
    },
  };
}

/** A tenant config object: iam-internal realm of its own id, shared storage schema. */
export function tenantObject(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, storage: { namespace: id, isolation: 'schema' }, identity: { provider: 'iam-internal', realm: id }, network: { default: 'deny', allow: [] }, ...extra };
}
