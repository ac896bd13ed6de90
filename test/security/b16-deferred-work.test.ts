/**
 * THREATS B16: work a mini-app schedules to run after its call returned — a timer, a
 * background async loop, a FinalizationRegistry callback — never runs outside a call.
 * Timers belong to the call that set them and are dropped when it ends (even while a
 * later call is running); host replies that arrive after the call ended are dropped, so
 * a background loop stops at its first platform call; finalizers run, if ever, only
 * inside a later call of the same instance, under that call's own deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { appBundle, startTestPlatform } from '../helpers/platform.ts';

declare const fc: any;

const app = bundleOf({
  lateTimer(key: string) {
    setTimeout(() => void fc.storage.set(key, 'written after the call').catch(() => {}), 30);
    return 'scheduled';
  },
  async sleep(ms: number) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return 'slept';
  },
  backgroundLoop() {
    void (async () => {
      for (let i = 0; ; i++) {
        await fc.storage.set('bg:' + i, i);
        (globalThis as any).bgDone = i + 1;
      }
    })().catch(() => {});
    return 'started';
  },
  bgCount() {
    return (globalThis as any).bgDone ?? 0;
  },
  registerFinalizers(spin: boolean) {
    const g = globalThis as any;
    g.registry = new FinalizationRegistry(() => {
      g.finalized = (g.finalized ?? 0) + 1;
      if (spin) for (;;);
      void fc.storage.set('finalized:' + g.finalized, true).catch(() => {});
    });
    for (let i = 0; i < 500; i++) g.registry.register({ payload: new Array(64).fill(i) }, i);
    return 'registered';
  },
  churn() {
    // Allocation pressure: lets V8 collect the registered objects and queue finalizers.
    let keep: unknown[] = [];
    for (let i = 0; i < 150_000; i++) keep.push({ i, s: 'x' + i });
    keep = [];
    return { finalized: (globalThis as any).finalized ?? 0 };
  },
});

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'deferrer', namespace: 'ns-deferrer', limits: { cpu_ms: 1000, wall_ms: 3000 } }]);
});
afterAll(() => p.dispose());

const tenant = () => p.tenants.get('deferrer');
const store = () => tenant().store.app('b16');
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function launched() {
  const { info } = await p.host.launch(tenant(), appBundle('b16', app), null);
  return {
    call: (method: string, args: unknown = null) => p.host.call(tenant(), null, info.id, method, JSON.stringify(args)).then(JSON.parse),
    live: () => p.host.isLive(info.id),
    dispose: () => p.host.isLive(info.id) && p.host.dispose(tenant(), null, info.id),
  };
}

describe('timers that outlive their call', () => {
  it('should never fire once the call returned, while idle or during a later call', async () => {
    const i = await launched();
    expect(await i.call('lateTimer', 'late-idle')).toBe('scheduled');
    await wait(150);
    expect(await store().get('late-idle')).toBeUndefined();
    expect(await i.call('lateTimer', 'late-busy')).toBe('scheduled');
    // A later call that is running past the old timer's due time does not revive it.
    expect(await i.call('sleep', 200)).toBe('slept');
    expect(await store().get('late-busy')).toBeUndefined();
    i.dispose();
  });
});

describe('background async work', () => {
  it('should stop at its first platform call after the call returned', async () => {
    const i = await launched();
    expect(await i.call('backgroundLoop')).toBe('started');
    // The one write posted while the call ran may still land (a synced write can be slow
    // under load); after that, nothing more.
    await wait(300);
    const page1 = await store().list({ prefix: 'bg:', limit: 1000 });
    await wait(300);
    const page2 = await store().list({ prefix: 'bg:', limit: 1000 });
    expect(page2.entries.length).toBe(page1.entries.length);
    expect(page1.entries.length).toBeLessThanOrEqual(1);
    // The loop's continuation was dropped with its reply: it never resumes, even in a new call.
    expect(await i.call('bgCount')).toBeLessThanOrEqual(1);
    await wait(100);
    expect((await store().list({ prefix: 'bg:', limit: 1000 })).entries.length).toBe(page1.entries.length);
    i.dispose();
  });
});

describe('FinalizationRegistry callbacks', () => {
  it('should run finalizers only inside a later call: nothing is written while idle', async () => {
    const i = await launched();
    expect(await i.call('registerFinalizers', false)).toBe('registered');
    await wait(200);
    expect((await store().list({ prefix: 'finalized:', limit: 1000 })).entries).toEqual([]);
    let finalized = 0;
    for (let k = 0; k < 6 && finalized === 0; k++) finalized = (await i.call('churn')).finalized;
    // They ran, inside a churn call (which itself stays well within its CPU limit).
    expect(finalized).toBeGreaterThan(0);
    i.dispose();
  });

  it('should run a finalizer that never returns only under a later call, which then times out', async () => {
    const i = await launched();
    expect(await i.call('registerFinalizers', true)).toBe('registered');
    await wait(100);
    // Idle: nothing ran (a spinning finalizer outside a call would hold a thread forever).
    let outcome: unknown;
    for (let k = 0; k < 6 && i.live(); k++) outcome = await i.call('churn').catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(IsohostError);
    expect((outcome as IsohostError).code).toBe('timeout');
    expect(i.live()).toBe(false);
    i.dispose();
  });
});
