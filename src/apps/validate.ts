/**
 * Proves a bundle loads before it is accepted: compile, no imports, top-level code
 * runs within the limits, at least one exported function. It runs in a throwaway
 * isolate bound to no tenant, whose platform calls are all refused.
 */
import { IsohostError } from '../errors.ts';
import { launch } from '../sandbox/bridge.ts';
import type { IsolatePool } from '../sandbox/isolate-pool.ts';
import type { BundleSource } from './bundle.ts';

export async function validateBundle(pool: IsolatePool, bundle: BundleSource, limits: { memory_mb: number; cpu_ms: number }): Promise<string[]> {
  const { blank } = pool.take(limits.memory_mb);
  const instance = launch(blank, {
    source: bundle.source,
    sha256: bundle.sha256,
    metaJson: JSON.stringify({ app: { id: 'validation', version: 'validation' }, user: null }),
    cpuMs: limits.cpu_ms,
    onMessage: () => Promise.reject(new IsohostError('unavailable', 'platform calls are not available while a bundle is validated')),
  });
  const methods = [...instance.methods];
  instance.dispose();
  return methods;
}
