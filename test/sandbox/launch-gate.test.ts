/**
 * Launches and upload validation go through the tenant's gate like calls (issue 10 item 4,
 * THREATS F45): a launch takes a rate token and a concurrency slot, a failed launch counts
 * against the breach budget, and a validation counts only its limit breaches (a bundle
 * refused as invalid is the answer the upload asked for). The compile cache is bounded in
 * bytes, not entries.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IsohostError } from '../../src/errors.ts';
import { COMPILED_MAX_BYTES, compiledCacheBytes } from '../../src/sandbox/bridge.ts';
import { appBundle, startTestPlatform } from '../helpers/platform.ts';

const GOOD = 'export function ok() { return "ok"; }';
const THROWS = 'throw new Error("no");\nexport function ok() {}';
const SPINS = 'for (;;) {}\nexport function ok() {}';

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([
    // burst 3, then 1 a minute: the fourth breach in a row is refused
    { id: 'breacher', limits: { breaches_per_min: 1, instances: 50 } },
    { id: 'validator', limits: { breaches_per_min: 1, instances: 50 } },
    // two tokens at start, one a second after
    { id: 'rated', limits: { rate_per_sec: 1, instances: 50 } },
    // one at a time, four may wait: a burst of 3 breaches, then 1 a minute
    { id: 'queuer', limits: { concurrency: 1, breaches_per_min: 1, instances: 50, cpu_ms: 50 } },
    { id: 'bulky', limits: { instances: 50, breaches_per_min: 100_000, cpu_ms: 2000, wall_ms: 20_000 } },
    { id: 'refused', limits: { breaches_per_min: 1, instances: 50 } },
  ]);
});
afterAll(() => p.dispose());

const codeOf = (e: unknown) => (e as IsohostError).code;

describe('launches through the tenant gate', () => {
  it('should count every failed launch as a breach and then refuse the tenant', async () => {
    const t = p.tenants.get('breacher');
    for (let i = 0; i < 3; i++) expect(codeOf(await p.host.launch(t, appBundle('throws', THROWS), null).catch((e) => e))).toBe('invalid_request');
    const refused = await p.host.launch(t, appBundle('good', GOOD), null).catch((e) => e);
    expect(refused).toMatchObject({ code: 'resource_exhausted', message: expect.stringMatching(/broke its limits/) });
  });

  it('should refuse the launches that waited behind runaways once the breach budget is spent', async () => {
    const t = p.tenants.get('queuer');
    // One runs and four wait (concurrency 1 × 4); each would spin to its cpu_ms. Without
    // the check when a waiting launch gets its slot, all five ran and breached.
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => p.host.launch(t, appBundle('spins', SPINS), null).then(() => 'ok', codeOf)));
    expect(outcomes.filter((o) => o === 'timeout')).toHaveLength(3);
    expect(outcomes.filter((o) => o === 'resource_exhausted')).toHaveLength(2);
  });

  it('should make no instance logger or bindings for a launch the gate refuses', async () => {
    // A tenant refused thousands of times a second made an instance's child logger and
    // bindings for each, which nearly doubled the host's allocation rate and its GC pauses
    // on the main thread (bench neighbour.p99_ratio.launch-spin).
    const t = p.tenants.get('refused');
    const child = vi.spyOn(t.logger, 'child');
    try {
      expect(await p.host.launch(t, appBundle('good', GOOD), null)).toMatchObject({ info: { app: 'good' } });
      expect(child).toHaveBeenCalledTimes(1); // the spy sees what an admitted launch makes
      for (let i = 0; i < 3; i++) expect(codeOf(await p.host.launch(t, appBundle('throws', THROWS), null).catch((e) => e))).toBe('invalid_request');
      child.mockClear();
      for (let i = 0; i < 50; i++) expect(codeOf(await p.host.launch(t, appBundle('good', GOOD), null).catch((e) => e))).toBe('resource_exhausted');
      expect(child).not.toHaveBeenCalled();
    } finally {
      child.mockRestore();
    }
  });

  it('should not count an upload refused as invalid, but count one that breaches a limit', async () => {
    const t = p.tenants.get('validator');
    for (let i = 0; i < 5; i++) expect(codeOf(await p.host.validate(t, appBundle('throws', THROWS)).catch((e) => e))).toBe('invalid_request');
    expect(await p.host.validate(t, appBundle('good', GOOD))).toEqual(['ok']);
    for (let i = 0; i < 3; i++) expect(codeOf(await p.host.validate(t, appBundle('spins', SPINS)).catch((e) => e))).toBe('timeout');
    expect(await p.host.validate(t, appBundle('good', GOOD)).catch((e) => e)).toMatchObject({ code: 'resource_exhausted' });
  });

  it('should take a rate token per launch and per validation', async () => {
    const t = p.tenants.get('rated');
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await p.host.validate(t, appBundle('good', GOOD)).then(() => 'ok', codeOf));
    // The bucket starts with 2 tokens and refills at 1/s: four back to back cannot all pass.
    expect(results.slice(0, 2)).toEqual(['ok', 'ok']);
    expect(results).toContain('resource_exhausted');
  });

  it('should give the instance slot back after a validation', async () => {
    const t = p.tenants.get('bulky');
    for (let i = 0; i < 60; i++) await p.host.validate(t, appBundle('good', GOOD)); // more than its 50 instances
    expect(p.host.liveByTenant().get('bulky') ?? 0).toBe(0);
  });
});

describe('the compile cache', () => {
  it('should stay within its byte bound however many large bundles are launched', async () => {
    const t = p.tenants.get('bulky');
    const pad = 'x'.repeat(3 * 1024 * 1024);
    const before = compiledCacheBytes();
    for (let i = 0; i < 12; i++) {
      // ~6 MiB of UTF-16 script text each (plus its source map): twelve exceed the bound.
      const source = `export function n() { return ${i}; }\nexport const pad = ${JSON.stringify(pad)};`;
      expect(await p.host.validate(t, appBundle(`big-${i}`, source))).toEqual(['n']);
      expect(compiledCacheBytes()).toBeLessThanOrEqual(COMPILED_MAX_BYTES);
      if (i === 0) expect(compiledCacheBytes() - before).toBeGreaterThan(2 * pad.length);
    }
  });
});
