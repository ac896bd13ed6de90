/**
 * `density.rss_per_instance`: RSS growth divided by N live, idle instances of a small
 * app (prelude loaded, one call made so the method is compiled), measured after a full
 * GC before and after. Reported per round; p50/p99 across rounds.
 */
import { type BenchContext, type Result, forceGc, rssMB, summarizeMB } from './stats.ts';
import { NOOP_BUNDLE, benchPlatform, bundle } from './platform.ts';

export const names = ['density.rss_per_instance'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  if (!ctx.wants('density.rss_per_instance')) return [];
  const n = ctx.n(500, 50);
  const rounds = ctx.n(3, 1);
  const p = await benchPlatform(0);
  const perInstance: number[] = [];
  try {
    const tenant = p.tenants.get('bench');
    const app = bundle('noop', NOOP_BUNDLE);
    // one instance first, so one-time costs (snapshot, code, caches) are not counted
    const first = await p.host.launch(tenant, app, null);
    await p.host.call(tenant, null, first.info.id, 'noop', '1');
    for (let r = 0; r < rounds; r++) {
      forceGc();
      const before = rssMB();
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const { info } = await p.host.launch(tenant, app, null);
        await p.host.call(tenant, null, info.id, 'noop', '1');
        ids.push(info.id);
      }
      forceGc();
      await new Promise((res) => setTimeout(res, 200));
      perInstance.push((rssMB() - before) / n);
      for (const id of ids) p.host.dispose(tenant, null, id);
      forceGc();
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    await p.dispose();
  }
  return [summarizeMB('density.rss_per_instance', perInstance, { instances: n })];
}
