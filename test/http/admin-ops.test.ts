/**
 * Where the admin API and the console live (issue 14): with `deployment.ops_listen` they are
 * on the ops listener, documented in its own /openapi.json, and absent from the public API
 * listener; `isohost console` prints that listener's URL with a short-lived operator token in
 * the fragment, which the admin API there accepts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { startConsoleServer, tenantObject, type ConsoleServer } from '../console/console-server.ts';

let s: ConsoleServer;
beforeAll(async () => {
  s = await startConsoleServer([tenantObject('alpha'), tenantObject('beta', { compute: { isolation: 'shared' } })], { ops: true });
});
afterAll(() => s?.dispose());

describe('the admin API and the console with ops_listen', () => {
  it('should serve them on the ops listener only', async () => {
    const token = await s.operatorToken();
    const onOps = await s.api('GET', '/v1/admin/tenants', { token, base: s.adminUrl });
    expect(onOps.status, onOps.text).toBe(200);
    expect(onOps.json().tenants.map((t: { id: string }) => t.id)).toEqual(['alpha', 'beta']);
    expect((await s.api('GET', '/console/', { base: s.adminUrl })).status).toBe(200);
    expect((await s.api('GET', '/v1/admin/tenants', { token })).status).toBe(404);
    expect((await s.api('GET', '/console/')).status).toBe(404);
    // The tenant API stays where it was, and not on the ops listener.
    expect((await s.api('GET', '/v1/tenants/alpha/apps', { token: await s.token('alpha') })).status).toBe(200);
    expect((await s.api('GET', '/v1/tenants/alpha/apps', { token: await s.token('alpha'), base: s.adminUrl })).status).toBe(404);
  });

  it('should document the admin API in the ops listener\'s own /openapi.json', async () => {
    const doc = (await s.api('GET', '/openapi.json', { base: s.adminUrl })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/admin/tenants', '/v1/admin/review', '/v1/admin/egress', '/console/{file}', '/healthz', '/metrics']));
    expect(Object.keys((await s.api('GET', '/openapi.json')).json().paths).filter((p) => p.startsWith('/v1/admin'))).toEqual([]);
  });

  it('should print the console URL with a short-lived operator token in the fragment, accepted there', async () => {
    await s.operatorToken(); // the operator realm's key exists before the CLI reads it
    const res = await cli(['console', '--config', s.configFile, '--sub', 'olga', '--ttl', '10m']);
    expect(res.code, res.stderr).toBe(0);
    const url = new URL(res.stdout.trim());
    expect(url.search).toBe('');
    expect(url.pathname).toBe('/console/');
    const token = /^#token=([A-Za-z0-9_\-.]+)$/.exec(url.hash)?.[1];
    expect(token).toBeDefined();
    const verified = await s.identity.operatorVerifier().verify(token!);
    expect(verified.sub).toBe('olga');
    expect([...verified.scope].sort()).toEqual(['apps:review', 'apps:rollout', 'console:read']);
    expect((verified.claims.exp as number) - (verified.claims.iat as number)).toBe(600);
    const ok = await s.api('GET', '/v1/admin/review', { token: token!, base: s.adminUrl });
    expect(ok.status, ok.text).toBe(200);
  });

  it('should refuse to mint without an operator realm', async () => {
    const object = JSON.parse(await readFile(s.configFile, 'utf8'));
    delete object.deployment.operator_realm;
    const file = join(dirname(s.configFile), 'no-operators.json');
    await writeFile(file, JSON.stringify(object));
    const res = await cli(['console', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.lastError?.error).toMatchObject({ code: 'config_invalid', message: expect.stringContaining('deployment.operator_realm') });
    expect(res.stdout).toBe('');
  });
});
