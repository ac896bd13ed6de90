/**
 * Real parts for identity tests: tenant configs parsed by the real zod schema, a loopback
 * JWKS server that counts hits, an undici-based fetchJwks, attacker keys, and a hand-crafter
 * for tokens jose refuses to produce (`alg: none`, HS256 keyed with a public key).
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { request } from 'undici';
import { tenantSchema, type TenantConfig } from '../../src/config/schema.ts';

/** A tenant config through the real schema (defaults applied, strictness enforced). */
export function tenant(id: string, identity: Record<string, unknown>): TenantConfig {
  return tenantSchema.parse({ id, storage: { namespace: id, isolation: 'schema' }, identity });
}

/** fetchJwks as the lead will wire it, minus the proxy: undici GET, 200 + JSON only. */
export async function undiciFetchJwks(url: string): Promise<unknown> {
  const res = await request(url, { method: 'GET', headers: { accept: 'application/json' } });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`JWKS endpoint answered ${res.statusCode}`);
  }
  return res.body.json();
}

export interface RecordingServer {
  url: string;
  /** Every request path, in order. */
  hits: string[];
  /** Replaces the JSON body served for every path. */
  serve(body: unknown): void;
  close(): Promise<void>;
}

/** A loopback HTTP server that records every request and serves one JSON body. */
export async function startRecordingServer(body: unknown = { keys: [] }): Promise<RecordingServer> {
  let current = body;
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(current));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    serve(next) {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** A fresh signing key with its public JWK (kid = RFC 7638 thumbprint). */
export async function testKey(alg: 'EdDSA' | 'ES256' | 'RS256' = 'ES256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, alg, privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWT with an arbitrary header, payload and signature bytes. */
export function craftToken(header: Record<string, unknown>, payload: Record<string, unknown>, sign?: (input: string) => Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign === undefined ? '' : sign(input).toString('base64url')}`;
}

/** HMAC-SHA256 keyed with `secret`: the alg-confusion attack of RFC 8725 §2.1. */
export function hs256With(secret: Buffer | string): (input: string) => Buffer {
  return (input) => createHmac('sha256', secret).update(input).digest();
}

/** Seconds since the epoch for a ms clock value. */
export const seconds = (ms: number) => Math.floor(ms / 1000);
