/**
 * THREATS A9: never two tenants in one isolate. Every launch — warm (an isolate from the
 * pool) or cold — binds a blank isolate that nobody has bound before, and binds it once:
 * whatever one instance leaves in its realm (globals, prototypes, module state) is seen
 * by no other instance, of another tenant or of the same one.
 *
 * The process tier (untrusted partners in a process of their own) does not exist yet;
 * docs/SECURITY.md says so. One-shot reuse across tenants and subjects is covered over
 * HTTP in test/http/isolation.test.ts; foreign instance ids in test/http/ownership.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { launch } from '../../src/sandbox/bridge.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { appBundle, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;
// Module state of the bundle (declared by the prologue below, inside the isolate).
declare const moduleState: string[];

const app = bundleOf(
  {
    visit(tag: string) {
      const g = globalThis as any;
      const before = { seen: g.__seen ?? [], proto: (Object.prototype as any).__left ?? null, moduleState: moduleState.length, appId: fc.app.id };
      g.__seen = [...(g.__seen ?? []), tag];
      (Object.prototype as any).__left = tag;
      moduleState.push(tag);
      return before;
    },
  },
  'const moduleState = [];',
);

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  // Same memory_mb for both tenants: they draw from one warm-pool list.
  p = await startTestPlatform([{ id: 'tenant-a', namespace: 'ns-a' }, { id: 'tenant-b', namespace: 'ns-b' }], { warmPool: 2 });
});
afterAll(() => p.dispose());

async function visitOnce(tenantId: string, tag: string, appId = 'shared-app') {
  const tenant = p.tenants.get(tenantId);
  const { info, warm } = await p.host.launch(tenant, appBundle(appId, app), null);
  try {
    return { warm, before: JSON.parse(await p.host.call(tenant, null, info.id, 'visit', JSON.stringify(tag))) };
  } finally {
    p.host.dispose(tenant, null, info.id);
  }
}

describe('isolates and tenants', () => {
  it('should give every launch, warm or cold, a realm no one used before', async () => {
    let warm = 0;
    for (let i = 0; i < 24; i++) {
      const tenant = i % 3 === 2 ? 'tenant-b' : 'tenant-a';
      const r = await visitOnce(tenant, `${tenant}#${i}`);
      expect(r.before, `launch ${i}`).toEqual({ seen: [], proto: null, moduleState: 0, appId: 'shared-app' });
      if (r.warm) warm++;
      // let the pool refill between launches, so warm isolates are really exercised
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(warm).toBeGreaterThan(0);
  });

  it('should keep two live instances of the same app, one per tenant, apart while both run', async () => {
    const a = p.tenants.get('tenant-a');
    const b = p.tenants.get('tenant-b');
    const ia = (await p.host.launch(a, appBundle('shared-app', app), null)).info.id;
    const ib = (await p.host.launch(b, appBundle('shared-app', app), null)).info.id;
    const call = (t: typeof a, id: string, tag: string) => p.host.call(t, null, id, 'visit', JSON.stringify(tag)).then(JSON.parse);
    await call(a, ia, 'a1');
    await call(b, ib, 'b1');
    expect(await call(a, ia, 'a2')).toMatchObject({ seen: ['a1'], proto: 'a1', moduleState: 1 });
    expect(await call(b, ib, 'b2')).toMatchObject({ seen: ['b1'], proto: 'b1', moduleState: 1 });
    // An instance is reachable only under its own tenant.
    await expect(p.host.call(b, null, ia, 'visit', '"x"')).rejects.toMatchObject({ code: 'not_found' });
    p.host.dispose(a, null, ia);
    p.host.dispose(b, null, ib);
  });

  it('should refuse to bind a blank isolate a second time', async () => {
    const { blank } = await p.pool.take(p.tenants.get('tenant-a').limits.memory_mb);
    const spec = { source: app, sha256: appBundle('x', app).sha256, metaJson: JSON.stringify({ app: { id: 'x', version: 'v' }, user: null }), label: 'a9', memoryMb: 128, cpuMs: 1000, wallMs: 1000 };
    const onMessage = async () => ({ json: '' });
    const first = await launch(blank, spec, onMessage);
    await expect(launch(blank, spec, onMessage)).rejects.toThrow(IsohostError);
    await expect(launch(blank, spec, onMessage)).rejects.toThrow(/reused/);
    first.dispose();
  });
});
