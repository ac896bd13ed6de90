/**
 * What a tenant can read of its own logs (`GET /v1/tenants/:tenant/logs`, issue 12): a
 * bounded ring of its recent lines and live subscribers. The log binding publishes every
 * line it accepts from the tenant's mini-apps (after the F46 limits, so the ring never sees
 * more than the tenant's log budget lets through) and the HTTP routes publish each call's
 * outcome. One hub per TenantContext, like the log budget (budget.ts): a tenant's hub is
 * reached only through its own context, so a route can read no other tenant's.
 */
import type { TenantContext } from '../../tenants/context.ts';

/** Lines kept per tenant, and their total size in characters: whichever bound is reached first drops the oldest. */
export const LOG_RING_LINES = 1000;
export const LOG_RING_BYTES = 1024 * 1024;

/** One line of the stream, as NDJSON: a mini-app's log line, or a call's outcome. */
export interface TenantLogEntry {
  time: string;
  type: 'log' | 'call';
  /** The HTTP request that ran the call; null for calls without one (`isohost run`, a launch's top level). */
  request_id: string | null;
  app: string;
  version: string;
  /** The instance; null for a one-shot call's outcome (the host picks the instance). */
  instance: string | null;
  /** `log`: the level, message and fields the mini-app wrote. */
  level?: string;
  msg?: string;
  fields?: unknown;
  /** `call`: the method, `ok` or the error code, and the time it took. */
  method?: string;
  outcome?: string;
  ms?: number;
}

interface Held {
  app: string;
  /** The line as JSON text; undefined for a call outcome not read yet (rendered from `entry` on first read). */
  text: string | undefined;
  entry: TenantLogEntry | undefined;
  /** Characters the line counts against LOG_RING_BYTES. */
  size: number;
}

/** A call outcome's line with every string empty and `ms` 0: what each line has besides its values. */
const CALL_SKELETON = JSON.stringify({ time: '', type: 'call', request_id: '', app: '', version: '', instance: '', method: '', outcome: '', ms: 0 }).length - 1;
/** Room for `ms`: a JSON number takes at most 24 characters. */
const CALL_NUMBER_ROOM = 24;

/**
 * The characters a call outcome's line takes: its values are host-made (ids, codes, an ISO
 * time, a number of ms), which JSON writes without escapes, so their lengths add up.
 */
function callLineSize(e: TenantLogEntry): number {
  return CALL_SKELETON + CALL_NUMBER_ROOM + e.time.length + (e.request_id?.length ?? 4) + e.app.length + e.version.length + (e.instance?.length ?? 4) + (e.method?.length ?? 0) + (e.outcome?.length ?? 0);
}

export type LogListener = (line: string, app: string) => void;

export class TenantLogHub {
  readonly #ring: Held[] = [];
  #bytes = 0;
  readonly #listeners = new Set<LogListener>();

  /**
   * Adds a line: kept in the ring (dropping the oldest past the bounds) and sent to every
   * subscriber. A call's outcome line (every call publishes one) is written as JSON only
   * when someone reads it: with no subscriber, the ring keeps the entry, which the caller
   * must not change afterwards. A mini-app's line is written at once: its fields are values
   * the guest made, taken as they are now.
   */
  publish(entry: TenantLogEntry): void {
    const deferred = entry.type === 'call' && this.#listeners.size === 0 && entry.msg === undefined && entry.fields === undefined && entry.level === undefined;
    const text = deferred ? undefined : JSON.stringify(entry);
    const size = text === undefined ? callLineSize(entry) : text.length;
    this.#ring.push({ app: entry.app, text, entry: deferred ? entry : undefined, size });
    this.#bytes += size;
    while (this.#ring.length > LOG_RING_LINES || this.#bytes > LOG_RING_BYTES) this.#bytes -= this.#ring.shift()!.size;
    if (text !== undefined) for (const listener of this.#listeners) listener(text, entry.app);
  }

  /** The lines in the ring, oldest first, as JSON text; only `app`'s when given. */
  recent(app?: string): string[] {
    return this.#ring.filter((h) => app === undefined || h.app === app).map(textOf);
  }

  /** Calls `listener` with every line published from now on; returns the unsubscribe function. */
  subscribe(listener: LogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }
}

function textOf(h: Held): string {
  if (h.text === undefined) {
    h.text = JSON.stringify(h.entry);
    h.entry = undefined;
  }
  return h.text;
}

const hubs = new WeakMap<TenantContext, TenantLogHub>();

/** The hub of `tenant` (made on first use). */
export function tenantLogHub(tenant: TenantContext): TenantLogHub {
  let hub = hubs.get(tenant);
  if (hub === undefined) hubs.set(tenant, (hub = new TenantLogHub()));
  return hub;
}
