/**
 * THREATS C27: no code path authorises from an unverified decode. Dynamically, every
 * /v1 route refuses an edited payload under a real signature (test/http/auth.test.ts);
 * statically, this file pins that nothing in src/ can read a token's claims or header
 * without jose's `jwtVerify`: no decode helpers, no hand-rolled base64url parsing of a
 * token, and every /v1 handler authenticates before it touches a tenant, and names the
 * tenant from the route, never from the token.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';

async function srcFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(join(ROOT, 'src'), { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) out.set(join(e.parentPath, e.name).slice(ROOT.length), await readFile(join(e.parentPath, e.name), 'utf8'));
  }
  return out;
}
const code = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

describe('token handling in src/', () => {
  it('should use no unverified JWT decoding anywhere', async () => {
    for (const [file, text] of await srcFiles()) {
      expect(code(text), file).not.toMatch(/decodeJwt|decodeProtectedHeader|UnsecuredJWT|jwtDecrypt|compactVerify|flattenedVerify/);
    }
  });

  it('should call jose jwtVerify in exactly one place, the realm verifier', async () => {
    const users = [...(await srcFiles())].filter(([, text]) => /\bjwtVerify\(/.test(code(text))).map(([file]) => file);
    expect(users).toEqual(['src/identity/verifier.ts']);
  });

  it('should never parse a token by hand (split on dots, then base64url-decode a part)', async () => {
    for (const [file, text] of await srcFiles()) {
      if (file === 'src/egress/credential.ts') continue; // the proxy credential: HMAC-checked before its payload is read
      const c = code(text);
      const splitsToken = /(token|bearer|jwt|authorization)\w*\.split\(\s*['"]\.['"]/i.test(c);
      expect(splitsToken, file).toBe(false);
    }
  });

  it('should authenticate every /v1 route in its onRequest hook, before the body is read, with the tenant from the route', async () => {
    const files = await srcFiles();
    const routes = [...files].filter(([file]) => file.startsWith('src/http/routes/'));
    let handlers = 0;
    let registered = 0;
    for (const [file, text] of routes) {
      const c = code(text);
      // The hooks this file may use: built by requireScope (tenant realm) or requireOperator (operator realm).
      const hooks = new Set([...c.matchAll(/const (\w+) = (?:requireScope|requireOperator)\(ctx\.identity, platform\.tenants, '[a-z:]+'\);/g)].map((m) => m[1]!));
      // The admin API (operator realm only; metadata of every tenant by design, THREATS/console tests).
      const adminHooks = new Set([...c.matchAll(/const (\w+) = requireAdmin\(ctx\.identity, '[a-z:]+'\);/g)].map((m) => m[1]!));
      registered += [...c.matchAll(/app\.(get|post|put|delete)(?:<[^>]*>)?\(\s*'\/v1\//g)].length;
      for (const m of c.matchAll(/app\.(get|post|put|delete)(?:<[^>]*>)?\(\s*'(\/v1\/[^']*)',\s*\{([\s\S]*?)\n {4,6}\},\s*async \((?:req(?:, reply)?)?\) => \{([\s\S]*?)\n {4,6}\},/g)) {
        handlers++;
        const [, , path, options, body] = m as unknown as [string, string, string, string, string];
        const hook = /\bonRequest(?::\s*(\w+))?,/.exec(options);
        expect(hook, `${file} ${path}: no onRequest hook`).not.toBeNull();
        if (path.startsWith('/v1/admin/')) {
          expect(adminHooks.has(hook![1] ?? 'onRequest'), `${file} ${path}: onRequest is not the operator-realm hook`).toBe(true);
          continue;
        }
        expect(hooks.has(hook![1] ?? 'onRequest'), `${file} ${path}: onRequest is not an authentication hook`).toBe(true);
        expect(body.trimStart(), `${file} ${path}`).toMatch(/^const (caller = callerOf|operator = operatorOf)\(req\);/);
        expect(body, `${file} ${path}`).not.toMatch(/tenants\.get\(/);
      }
    }
    // Every /v1 registration was found and checked (CONTRACT §4 has six /v1 routes, v0.2 more).
    expect(handlers).toBe(registered);
    expect(handlers).toBeGreaterThanOrEqual(6);
    const auth = code(files.get('src/http/auth.ts')!);
    // The verifier is chosen by the tenant in the path; the tenant context only after verification.
    expect(auth).toMatch(/const tenantId = \(request\.params as \{ tenant\?: unknown \}\)\.tenant;/);
    expect(auth.indexOf('identity.verifierFor(tenantId).verify(')).toBeGreaterThan(-1);
    expect(auth.indexOf('identity.verifierFor(tenantId).verify(')).toBeLessThan(auth.indexOf('tenants.get(tenantId)'));
  });
});
