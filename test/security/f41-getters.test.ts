/**
 * THREATS F41: getters the host's own steps could run. The exports step used to walk
 * the exports object with `for…in` (inherited keys too) through `applySync` with no
 * timeout, so a looping getter on `Object.prototype` or on an export hung the host's
 * event loop for good: upload validation, every launch, `run`. Now the bundle's
 * top-level code and the exports step run on the isolate's thread under the launch's
 * CPU deadline, and only OWN keys are read: an inherited getter is never reached; an
 * own getter that loops ends the launch with `timeout`.
 *
 * Every attack goes through the HTTP API on a real port, while /healthz must answer
 * within 1 s and another tenant's calls must succeed, during and after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IsohostError } from '../../src/errors.ts';
import { ATTACKER, type AttackServer, missesOf, startAttackServer } from '../helpers/attack-server.ts';
import { appBundle } from '../helpers/platform.ts';

let s: AttackServer;
beforeAll(async () => {
  s = await startAttackServer();
});
afterAll(() => s.close());

const LOOPING_GETTER = '{ enumerable: true, configurable: true, get() { for (;;) {} } }';

/** An attack is an upload; the answer is 201 (the getter was never run) or a coded limit error. */
async function upload(appId: string, source: string) {
  const { result, watch } = await s.during(() => s.deploy(ATTACKER, appId, source));
  expect(missesOf(watch)).toEqual([]);
  return result;
}

describe('getters on the exports walk (F41)', () => {
  it('should never reach an enumerable looping getter on Object.prototype: the upload and calls work', async () => {
    const res = await upload('proto-getter', `Object.defineProperty(Object.prototype, 'zz', ${LOOPING_GETTER});\nexport function f() { return { ok: 1 }; }`);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.methods).toEqual(['f']);
    const { result, watch } = await s.during(() => s.call(ATTACKER, 'proto-getter', 'f'));
    expect(missesOf(watch)).toEqual([]);
    // A call may run into the getter through the guest's own code paths; it ends coded either way.
    expect(result.status === 200 ? result.body.result : result.body.error.code).toSatisfy((v: unknown) => v === 'timeout' || JSON.stringify(v) === '{"ok":1}');
  });

  it('should end an own looping getter on an export with timeout', async () => {
    const res = await upload('export-getter', `export function f() { return 1; }\nObject.defineProperty(module.exports, 'g', ${LOOPING_GETTER});`);
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('timeout');
  });

  // CommonJS-only bundles are refused at upload (src/apps/bundle-rules.ts) before any
  // isolate sees them; the exports walk must hold without that filter too, so these shapes
  // are also launched straight through the seam (the path `run` and launches take).
  it.each([
    ['a CommonJS-style exports object with a looping getter', 'module.exports = { get f() { for (;;) {} } };'],
    ['an exports Proxy whose ownKeys trap loops', 'module.exports = new Proxy({}, { ownKeys() { for (;;) {} } });'],
  ])('should refuse %s at upload, and end it with timeout when launched', async (_name, source) => {
    const res = await upload(`cjs-${source.length}`, source);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    const tenant = s.platform.tenants.get(ATTACKER);
    const { result, watch } = await s.during(() => s.platform.host.launch(tenant, appBundle('cjs-shape', source), null).catch((e: IsohostError) => e));
    expect(missesOf(watch)).toEqual([]);
    expect(result).toMatchObject({ code: 'timeout' });
  });

  it('should not take a getter that only throws as a method: the upload is refused as invalid', async () => {
    const res = await upload('throwing-getter', "export function f() { return 1; }\nObject.defineProperty(module.exports, 'g', { enumerable: true, get() { throw new Error('no'); } });");
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/failed while loading: no/) });
  });

  it('should end a launch whose getter starts looping after the upload with timeout', async () => {
    // Validation runs before ARM_AT; the launch after it meets the loop.
    const armAt = Date.now() + 1500;
    const source = `export function f() { return 1; }\nObject.defineProperty(module.exports, 'g', { enumerable: true, get() { if (Date.now() > ${armAt}) for (;;) {} return 2; } });`;
    const uploaded = await upload('late-getter', source);
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
    await new Promise((r) => setTimeout(r, Math.max(0, armAt - Date.now() + 50)));
    const { result, watch } = await s.during(() => s.request('POST', `/v1/tenants/${ATTACKER}/apps/late-getter/instances`, { tenant: ATTACKER }));
    expect(missesOf(watch)).toEqual([]);
    expect(result.status).toBe(504);
    expect(result.body.error.code).toBe('timeout');
  });

  it('should keep serving the attacker afterwards', async () => {
    const res = await s.deploy(ATTACKER, 'fine', 'export function ok() { return "fine"; }');
    expect(res.status).toBe(201);
    expect((await s.call(ATTACKER, 'fine', 'ok')).body).toEqual({ result: 'fine' });
  });
});
