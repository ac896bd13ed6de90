/**
 * The isohost HTTP API on a real loopback port for the app-lifecycle tests (issue 12): the
 * real config schema (tenants with `review`, an operator realm), real LevelDB in a temp
 * folder, real isolates, the real identity registry with its operator realm, buildServer()
 * listening on 127.0.0.1:0, and every request through fetch with real signed JWTs. The
 * platform's log lines are kept, so tests can read audit lines.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.ts';
import { buildServer } from '../../src/http/server.ts';
import { createIdentity, type Identity } from '../../src/identity/registry.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { testConfigObject, type TestTenant } from './platform.ts';
import { tempDir } from './tmp.ts';
import { lineSink } from './log-sink.ts';

export const OPERATOR_REALM = 'ops';

export interface LifecycleTenant extends TestTenant {
  review?: 'none' | 'required';
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json(): any;
}

export interface LifecycleServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  app: FastifyInstance;
  platform: Platform;
  identity: Identity;
  dataDir: string;
  /** The same config as a JSON file, for the CLI (`--config`). */
  configFile: string;
  /** A token of the tenant's realm. */
  token(tenant: string, sub?: string, scope?: string): Promise<string>;
  /** A token of the operator realm. */
  operatorToken(sub?: string, scope?: string): Promise<string>;
  /** One request; `body` a string is sent as is (with `type`), anything else as JSON. */
  api(method: string, path: string, options?: { token?: string; body?: unknown; type?: string }): Promise<ApiResponse>;
  /** The platform's log lines so far, parsed. */
  logLines(): Record<string, any>[];
  dispose(): Promise<void>;
}

export async function startLifecycleServer(tenants: LifecycleTenant[]): Promise<LifecycleServer> {
  const dir = await tempDir('isohost-lifecycle-');
  const raw = testConfigObject(dir.path, tenants);
  const object = {
    ...raw,
    deployment: { ...raw.deployment, operator_realm: OPERATOR_REALM },
    tenants: raw.tenants.map((t, i) => ({ ...t, review: tenants[i]!.review ?? 'none' })),
  };
  const config = validateConfig(object, dir.path);
  const configFile = join(dir.path, 'isohost.json');
  await writeFile(configFile, JSON.stringify(object));
  const lines: string[] = [];
  const sink = lineSink((line) => lines.push(line));
  const platform = await openPlatform(config, { logger: pino({ level: 'info' }, sink) });
  const identity = createIdentity({ dataDir: dir.path, tenants: config.tenants, operatorRealm: config.deployment.operator_realm });
  const app = await buildServer({ platform, identity });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const url = `http://127.0.0.1:${address.port}`;

  return {
    url,
    app,
    platform,
    identity,
    dataDir: dir.path,
    configFile,
    token: (tenant, sub = 'partner', scope = 'apps:call apps:deploy logs:read') => identity.mint(tenant, { sub, scope, ttl: '1h' }),
    operatorToken: (sub = 'operator-olga', scope = 'apps:review') => identity.mintInRealm(OPERATOR_REALM, { sub, scope, ttl: '1h' }),
    async api(method, path, options = {}) {
      const headers: Record<string, string> = {};
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      let body: string | undefined;
      if (typeof options.body === 'string') {
        body = options.body;
        headers['content-type'] = options.type ?? 'application/javascript';
      } else if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
    },
    logLines: () => lines.map((l) => JSON.parse(l) as Record<string, any>),
    async dispose() {
      const closing = app.close();
      // fetch (undici) may hold a connection on which it has sent no request yet: Node counts it
      // as busy, not idle, until its headers timeout (60 s), and close() would wait for it.
      app.server.closeAllConnections();
      await closing;
      await platform.close();
      await dir.dispose();
    },
  };
}
