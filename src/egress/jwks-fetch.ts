/**
 * Fetches an external realm's `jwks_uri` through the egress proxy, as that tenant
 * (so the tenant's allowlist decides whether its IdP is reachable: the platform itself
 * opens no outbound connection except through the proxy). Bounded: 5 s, 1 MiB.
 */
import type { PlatformConfig } from '../config/schema.ts';
import { IsohostError } from '../errors.ts';
import { createEgressClient } from './client.ts';
import { mintEgressCredential } from './credential.ts';

const MAX_JWKS_BYTES = 1024 * 1024;

export function jwksFetcher(config: PlatformConfig, proxyUrl: string, credentialKey: Uint8Array): (url: string) => Promise<unknown> {
  const tenantByUri = new Map<string, string>();
  for (const t of config.tenants) {
    if (t.identity.provider === 'oidc-external' && t.identity.jwks_uri !== undefined) tenantByUri.set(t.identity.jwks_uri, t.id);
  }
  return async (url: string) => {
    const tenant = tenantByUri.get(url);
    if (tenant === undefined) throw new IsohostError('egress_denied', 'no tenant configures this jwks_uri');
    const credential = mintEgressCredential(credentialKey, { tenant, app: 'isohost-identity', instance: 'jwks', exp: Date.now() + 60_000 });
    const client = createEgressClient(proxyUrl, credential);
    try {
      const u = new URL(url);
      const res = await client.agent.request({ origin: u.origin, path: u.pathname + u.search, method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new IsohostError('egress_failed', `jwks_uri answered ${res.statusCode}`);
      }
      let size = 0;
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_JWKS_BYTES) throw new IsohostError('payload_too_large', 'jwks_uri answer is over 1 MiB');
        chunks.push(chunk as Buffer);
      }
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } finally {
      await client.close();
    }
  };
}
