/**
 * The console's call statistics (src/http/stats.ts) on a clock the test moves: per-minute
 * buckets that leave the 5- and 60-minute windows when they age, p50/p99 from the latency
 * bins, breaches counted apart from other errors, recent errors bounded and metadata only.
 */
import { describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { CallStats, RECENT_ERRORS } from '../../src/http/stats.ts';

const MIN = 60_000;

function clock(start = Date.UTC(2026, 0, 1, 12, 0, 30)) {
  const c = { now: start, tick: (ms: number) => void (c.now += ms) };
  return c;
}

const ok = (ms: number, app = 'shop') => ({ tenant: 'acme', app, version: 'v1', method: 'buy', outcome: 'ok', ms, requestId: 'r' });

describe('CallStats', () => {
  it('should keep calls in the 5-minute window until they are older than 5 minutes, and in the hour until then', () => {
    const c = clock();
    const stats = new CallStats(() => c.now);
    stats.record(ok(2));
    expect(stats.summary('acme', undefined, 5)).toMatchObject({ calls: 1, errors: 0 });
    c.tick(4 * MIN);
    expect(stats.summary('acme', undefined, 5).calls).toBe(1);
    c.tick(1 * MIN);
    expect(stats.summary('acme', undefined, 5).calls).toBe(0);
    expect(stats.summary('acme', undefined, 60).calls).toBe(1);
    c.tick(55 * MIN);
    expect(stats.summary('acme', undefined, 60).calls).toBe(0);
    // The slot is reused an hour later without the old minute's counts.
    stats.record(ok(2));
    expect(stats.summary('acme', undefined, 60).calls).toBe(1);
    expect(stats.perMinute('acme')).toHaveLength(60);
    expect(stats.perMinute('acme').at(-1)).toMatchObject({ calls: 1 });
    expect(stats.perMinute('acme').slice(0, -1).every((p) => p.calls === 0)).toBe(true);
  });

  it('should give p50 and p99 within a 25 % bin of the true values', () => {
    const stats = new CallStats();
    for (let i = 1; i <= 100; i++) stats.record(ok(i));
    const { p50_ms, p99_ms } = stats.summary('acme', undefined, 60);
    expect(p50_ms).toBeGreaterThanOrEqual(50);
    expect(p50_ms).toBeLessThanOrEqual(50 * 1.25);
    expect(p99_ms).toBeGreaterThanOrEqual(99);
    expect(p99_ms).toBeLessThanOrEqual(99 * 1.25);
    expect(new CallStats().summary('acme', undefined, 60)).toEqual({ calls: 0, errors: 0, breaches: 0, p50_ms: null, p99_ms: null });
  });

  it('should count breaches apart, split by app, and keep recent errors bounded with their bundle line but no message', () => {
    const stats = new CallStats();
    stats.record({ ...ok(1), outcome: 'timeout' });
    stats.record({ ...ok(1), outcome: 'resource_exhausted' });
    const thrown = new IsohostError('miniapp_error', 'secret-in-message (src/index.ts:3)', { details: { line: 7, file: 'src/index.ts', file_line: 3 } });
    stats.record({ ...ok(1, 'other'), outcome: 'miniapp_error', error: thrown });
    expect(stats.summary('acme', undefined, 60)).toMatchObject({ calls: 3, errors: 3, breaches: 2 });
    expect(stats.summary('acme', 'other', 60)).toMatchObject({ calls: 1, errors: 1, breaches: 0 });
    expect(stats.summary('nobody', undefined, 60).calls).toBe(0);
    const [latest] = stats.recentErrors('acme', 'other');
    expect(latest).toMatchObject({ code: 'miniapp_error', line: 7, file: 'src/index.ts', file_line: 3, app: 'other' });
    expect(JSON.stringify(stats.recentErrors('acme'))).not.toContain('secret-in-message');
    for (let i = 0; i < RECENT_ERRORS + 10; i++) stats.record({ ...ok(1), outcome: 'miniapp_error' });
    expect(stats.recentErrors('acme', 'shop')).toHaveLength(RECENT_ERRORS);
  });
});
