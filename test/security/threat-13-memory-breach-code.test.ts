/**
 * THREATS B13 (regression) and B12.
 *
 * B13: when a call pushed its isolate over `memory_mb`, isolated-vm disposed the isolate
 * before the bridge asked it for its heap limit (to word the error), and that question
 * threw a raw "Isolated is disposed" — so a memory breach reached callers as an uncoded
 * error (HTTP 500 `internal`) instead of `resource_exhausted` (429). The limit is now
 * remembered from creation. (test/sandbox/limits.test.ts runs its bombs with a 200 ms
 * CPU limit, so the CPU limit usually wins there and the breach code went unseen.)
 *
 * (A Map or dictionary flood is not here: it escapes the limit and aborts the process —
 * threat-13-catastrophic-oom.test.ts pins that, in a child process.)
 *
 * B12: an isolate that breached a limit is never used again: the instance is gone, a
 * one-shot call after it gets a fresh isolate (module state starts over), and nothing of
 * the dead isolate's globals is visible anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { expectError, startTestServer, type TestServer } from '../helpers/http-server.ts';
import { appBundle } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf(
  {
    count() {
      (globalThis as any).calls = ((globalThis as any).calls ?? 0) + 1;
      return { calls: (globalThis as any).calls, marker: (globalThis as any).marker ?? null };
    },
    mark() {
      (globalThis as any).marker = 'from-the-dead-isolate';
      return true;
    },
    arrayFlood() {
      const a: unknown[] = [];
      for (;;) a.push({ x: [1, 2, 3], y: 'z'.repeat(16) });
    },
    stringFlood() {
      const keep: string[] = [];
      for (let i = 0; ; i++) keep.push('x'.repeat(1000) + i);
    },
    bufferFlood() {
      const keep: ArrayBuffer[] = [];
      for (;;) keep.push(new ArrayBuffer(1024 * 1024));
    },
    spin() {
      for (;;);
    },
  },
);

let s: TestServer;
beforeAll(async () => {
  // A CPU budget far above what the floods need to fill 16 MB: memory is what ends them.
  s = await startTestServer({ tenants: [{ id: 'greedy', limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000, breaches_per_min: 100_000 } }, { id: 'calm', limits: { cpu_ms: 300 } }] });
  await s.deploy('greedy', 'app', app);
  await s.deploy('calm', 'app', app);
});
afterAll(() => s?.dispose());

describe('a memory breach (B13)', () => {
  it.each(['arrayFlood', 'stringFlood'])('should end %s with resource_exhausted, not a raw error', async (method) => {
    const tenant = s.platform.tenants.get('greedy');
    const { info } = await s.platform.host.launch(tenant, appBundle('app', app), null);
    const err = await s.platform.host.call(tenant, null, info.id, method, 'null').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('resource_exhausted');
    expect((err as IsohostError).message).toContain('16 MB');
    // B12: the isolate is gone for good.
    await expect(s.platform.host.call(tenant, null, info.id, 'count', 'null')).rejects.toMatchObject({ code: 'not_found' });
    expect(s.platform.host.isLive(info.id)).toBe(false);
  });

  it('should answer 429 resource_exhausted over HTTP, on an instance and one-shot', async () => {
    const instance = await s.launch('greedy', 'app');
    expectError(await s.call('greedy', instance, 'arrayFlood'), 429, 'resource_exhausted');
    expectError(await s.call('greedy', instance, 'count'), 404, 'not_found');
    expectError(await s.oneShot('greedy', 'app', 'stringFlood'), 429, 'resource_exhausted');
  });

  it('should let an ArrayBuffer flood fail in the guest with a RangeError it could catch (422, never 500)', async () => {
    // Buffers live outside the V8 heap: isolated-vm's allocator refuses them past the
    // limit, the guest sees "Array buffer allocation failed", as in browsers.
    const res = await s.oneShot('greedy', 'app', 'bufferFlood');
    if (res.statusCode === 422) expect(expectError(res, 422, 'miniapp_error')).toMatch(/allocation failed/);
    else expectError(res, 429, 'resource_exhausted');
    expect((await s.oneShot('greedy', 'app', 'count')).statusCode).toBe(200);
  });
});

describe('no reuse after a breach (B12)', () => {
  it.each([
    ['memory', 'greedy', 'arrayFlood', 429],
    ['CPU', 'calm', 'spin', 504],
  ] as const)('should give the next one-shot call a fresh isolate after a %s breach', async (_, tenant, bomb, status) => {
    // Warm a one-shot instance with state, breach it, and look for that state again.
    expect((await s.oneShot(tenant, 'app', 'mark')).statusCode).toBe(200);
    const before = (await s.oneShot(tenant, 'app', 'count')).json().result;
    expect(before.marker).toBe('from-the-dead-isolate');
    expect((await s.oneShot(tenant, 'app', bomb)).statusCode).toBe(status);
    // Every one-shot instance this subject may have is checked: none carries the marker.
    for (let i = 0; i < 4; i++) {
      const after = (await s.oneShot(tenant, 'app', 'count')).json().result;
      if (after.marker !== null) {
        // A sibling instance launched before the breach (one-shot keeps up to 4) is fine;
        // the breached one must not come back: its call count never continues past `before`.
        expect(after.calls).not.toBe(before.calls + 1);
      }
    }
  });
});
