/**
 * `call.noop`, `call.storage.get`, `call.storage.set`: one method call on a live
 * instance through InstanceHost.call (tenant gate, scope, CPU/wall guard, envelope),
 * JSON text in and out, awaited one at a time like the `baseline.ivm.call` floor.
 */
import { SMALL_ARG } from './baseline-ivm.ts';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';
import { NOOP_BUNDLE, benchPlatform, bundle } from './platform.ts';

export const names = ['call.noop', 'call.storage.get', 'call.storage.set'];

const METHOD: Record<string, string> = { 'call.noop': 'noop', 'call.storage.get': 'get', 'call.storage.set': 'set' };

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  const p = await benchPlatform(1);
  try {
    const tenant = p.tenants.get('bench');
    const { info } = await p.host.launch(tenant, bundle('noop', NOOP_BUNDLE), null);
    const args = JSON.stringify(SMALL_ARG);
    await p.host.call(tenant, null, info.id, 'set', args);
    for (const name of names) {
      if (!ctx.wants(name)) continue;
      const method = METHOD[name]!;
      const samples = await sample(ctx.n(500, 100), ctx.n(name === 'call.storage.set' ? 1000 : 5000, 300), async () => {
        const t0 = now();
        await p.host.call(tenant, null, info.id, method, args);
        return since(t0);
      });
      results.push(summarize(name, 'us', samples));
    }
  } finally {
    await p.dispose();
  }
  return results;
}
