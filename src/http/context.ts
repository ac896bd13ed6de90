/** What every route plugin receives: the platform, identity and the server's metrics. */
import type { Identity } from '../identity/registry.ts';
import type { Platform } from '../platform.ts';
import type { OneShotCaller } from '../sandbox/one-shot.ts';
import type { HttpMetrics } from './metrics.ts';

export interface ServerContext {
  platform: Platform;
  identity: Identity;
  metrics: HttpMetrics;
  oneShot: OneShotCaller;
  /** Extra readiness probes (e.g. the egress proxy); each throws when not ready. */
  readiness: Record<string, () => Promise<void>>;
  /** Largest JSON args body for a call, in bytes. */
  maxArgsBytes: number;
  /**
   * True once the server is shutting down (SIGTERM/SIGINT): `/readyz` answers 503
   * `{"status":"draining"}` so load balancers stop routing while in-flight calls finish.
   * Flipped by `serve` through `app.isohost.draining = true`.
   */
  draining: boolean;
}
