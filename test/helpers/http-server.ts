/**
 * A real isohost HTTP API for tests: the real config schema, real LevelDB directories in a
 * temp folder, real isolates, the real identity registry (Ed25519 keys on disk) and
 * buildServer() driven through `app.inject()` — no socket (fastify habit). Tokens are real
 * signed JWTs from `identity.mint`, or signed with the realm's real key for claims the
 * minter refuses to produce (wrong iss/aud, nbf, no exp).
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { SignJWT, type JWTPayload } from 'jose';
import pino, { type Logger } from 'pino';
import { expect } from 'vitest';
import { validateConfig } from '../../src/config/load.ts';
import type { ErrorCode } from '../../src/errors.ts';
import { buildServer } from '../../src/http/server.ts';
import { createRealmKeyStore, type RealmKeyStore } from '../../src/identity/realm-keys.ts';
import { createIdentity, type Identity } from '../../src/identity/registry.ts';
import { openPlatform, type Platform } from '../../src/platform.ts';
import { testConfigObject, type TestTenant } from './platform.ts';
import { tempDir } from './tmp.ts';

export const ALL_SCOPES = 'apps:call apps:deploy';

export interface TestServerOptions {
  tenants: TestTenant[];
  /** Merged into `deployment` (e.g. `max_bundle_bytes`, `data_residency`). */
  deployment?: Record<string, unknown>;
  /** buildServer's JSON args body limit. */
  maxArgsBytes?: number;
  /** The platform's logger (default: silent), e.g. to read the lines mini-apps write. */
  logger?: Logger;
}

export interface TestServer {
  app: FastifyInstance;
  platform: Platform;
  identity: Identity;
  dataDir: string;
  /** A real token of the tenant's realm (default: both scopes, 1 h). */
  token(tenant: string, sub?: string, scope?: string): Promise<string>;
  /** Claims that verify in the tenant's realm, with `extra` merged over them. */
  claims(tenant: string, extra?: JWTPayload): JWTPayload;
  /** Signs `payload` with the realm's real current signing key (header fields overridable). */
  signRaw(tenant: string, payload: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** PUT a bundle (expects 201) and returns the response body. */
  deploy(tenant: string, app: string, source: string | Buffer, sub?: string): Promise<DeployResult>;
  /** POST an instance (expects 201) and returns its id. */
  launch(tenant: string, app: string, sub?: string): Promise<string>;
  /** POST a call on an instance with `args` as the JSON body. */
  call(tenant: string, instance: string, method: string, args?: unknown, sub?: string): Promise<LightMyRequestResponse>;
  /** POST a one-shot call with `args` as the JSON body. */
  oneShot(tenant: string, app: string, method: string, args?: unknown, sub?: string): Promise<LightMyRequestResponse>;
  dispose(): Promise<void>;
}

export interface DeployResult {
  app: string;
  version: string;
  sha256: string;
  size: number;
  methods: string[];
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The JSON body of a response with `args` (undefined: no body at all). */
export function jsonBody(args: unknown): Pick<InjectOptions, 'headers' | 'payload'> {
  return args === undefined ? {} : { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(args) };
}

/** Asserts the one error shape `{ error: { code, message } }`, its status and an x-request-id. */
export function expectError(res: LightMyRequestResponse, status: number, code: ErrorCode): string {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['x-request-id']).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
  const body = res.json() as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error.message;
}

export async function startTestServer(options: TestServerOptions): Promise<TestServer> {
  const dir = await tempDir('isohost-http-');
  const raw = testConfigObject(dir.path, options.tenants);
  const config = validateConfig({ ...raw, deployment: { ...raw.deployment, ...options.deployment } }, dir.path);
  const platform = await openPlatform(config, { logger: options.logger ?? pino({ level: 'silent' }) });
  const identity = createIdentity({ dataDir: dir.path, tenants: config.tenants });
  const app = await buildServer({ platform, identity, ...(options.maxArgsBytes === undefined ? {} : { maxArgsBytes: options.maxArgsBytes }) });
  // A second view of the same key files, to sign tokens the minter will not produce.
  const keys: RealmKeyStore = createRealmKeyStore(dir.path, { recheckMs: 0 });

  const token = (tenant: string, sub = 'alice', scope = ALL_SCOPES) => identity.mint(tenant, { sub, scope, ttl: '1h' });
  const claims = (tenant: string, extra: JWTPayload = {}): JWTPayload => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: `isohost:realm:${tenant}`, aud: tenant, sub: 'alice', scope: ALL_SCOPES, iat: now, exp: now + 3600, ...extra };
  };
  const inject = (opts: InjectOptions) => app.inject(opts) as Promise<LightMyRequestResponse>;
  const post = async (tenant: string, sub: string, url: string, args: unknown) => {
    const body = jsonBody(args);
    return inject({ method: 'POST', url, ...body, headers: { ...body.headers, ...bearer(await token(tenant, sub)) } });
  };

  return {
    app,
    platform,
    identity,
    dataDir: dir.path,
    token,
    claims,
    async signRaw(tenant, payload, header = {}) {
      await token(tenant); // the realm's first key is created by the identity's own store
      const { kid, key } = await keys.signingKey(tenant);
      return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'isohost+jwt', ...header }).sign(key);
    },
    inject,
    async deploy(tenant, appId, source, sub = 'deployer') {
      const res = await inject({
        method: 'PUT',
        url: `/v1/tenants/${tenant}/apps/${appId}`,
        headers: { ...bearer(await token(tenant, sub)), 'content-type': 'application/javascript' },
        payload: source,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as DeployResult;
    },
    async launch(tenant, appId, sub = 'alice') {
      const res = await inject({ method: 'POST', url: `/v1/tenants/${tenant}/apps/${appId}/instances`, headers: bearer(await token(tenant, sub)) });
      expect(res.statusCode, res.body).toBe(201);
      return (res.json() as { instance: string }).instance;
    },
    call: (tenant, instance, method, args, sub = 'alice') => post(tenant, sub, `/v1/tenants/${tenant}/instances/${instance}/calls/${method}`, args),
    oneShot: (tenant, appId, method, args, sub = 'alice') => post(tenant, sub, `/v1/tenants/${tenant}/apps/${appId}/calls/${method}`, args),
    async dispose() {
      await app.close();
      await platform.close();
      await dir.dispose();
    },
  };
}

/** The parsed `result` of a 200 call response (fails the test on any other status). */
export function resultOf(res: LightMyRequestResponse): unknown {
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { result: unknown }).result;
}
