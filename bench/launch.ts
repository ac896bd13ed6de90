/**
 * `launch.cold` (no warm isolate: new Isolate from the prelude snapshot + context +
 * attach + bind + compile + evaluate) and `launch.warm` (a blank isolate taken from
 * the pool: bind + compile + evaluate), to ready-to-call. Both through
 * InstanceHost.launch, the path every HTTP launch takes. Disposal is untimed.
 */
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';
import { NOOP_BUNDLE, benchPlatform, bundle, poolRefilled } from './platform.ts';

export const names = ['launch.cold', 'launch.warm'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  const app = bundle('noop', NOOP_BUNDLE);
  for (const [name, warm] of [['launch.cold', 0], ['launch.warm', 4]] as const) {
    if (!ctx.wants(name)) continue;
    const p = await benchPlatform(warm);
    try {
      const tenant = p.tenants.get('bench');
      const samples = await sample(ctx.n(20, 5), ctx.n(300, 30), async () => {
        if (warm > 0) await poolRefilled(p, warm);
        const t0 = now();
        const { info, warm: wasWarm } = await p.host.launch(tenant, app, null);
        const elapsed = since(t0);
        if (wasWarm !== warm > 0) throw new Error(`${name}: expected a ${warm > 0 ? 'warm' : 'cold'} launch`);
        p.host.dispose(tenant, null, info.id);
        return elapsed;
      });
      results.push(summarize(name, 'ms', samples));
    } finally {
      await p.dispose();
    }
  }
  return results;
}
