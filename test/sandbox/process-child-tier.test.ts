/**
 * The sandbox process's warm pool (src/sandbox/process/child-tier.ts): a launch takes a
 * blank isolate from it, and the pool makes the replacement a little after the launch
 * rather than at once — but it does make it, so later launches find the pool warm again.
 * And its spare: a launch that repeats the one before it makes the sandbox load one more
 * instance ahead, which the next repeat takes — a fresh isolate, bound to the same user,
 * whose top-level code ran before the launch was asked for.
 * A real sandbox process with a warm pool of one.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import type { TierLaunchSpec } from '../../src/sandbox/tier.ts';
import { useSandboxProcess } from '../helpers/sandbox-process.ts';

const SOURCE = 'export function echo(a) { return a; }\n';
const SPEC: TierLaunchSpec = {
  source: SOURCE,
  sha256: createHash('sha256').update(SOURCE).digest('hex'),
  metaJson: '{"app":{"id":"pool","version":"1"},"user":null}',
  label: 't-pool/pool@1/i',
  memoryMb: 64,
  cpuMs: 5000,
  wallMs: 30_000,
};
const LIMITS = { cpuMs: 5000, wallMs: 30_000 };
/** A spec of `source` for app `id` and `user` (JSON text). */
function specOf(source: string, id: string, user: string): TierLaunchSpec {
  const sha256 = createHash('sha256').update(source).digest('hex');
  return { ...SPEC, source, sha256, metaJson: `{"app":{"id":"${id}","version":"1"},"user":${user}}`, label: `t-pool/${id}@1/i` };
}
const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform ops here'));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sandbox = useSandboxProcess('t-pool');

describe("a sandbox process's warm pool", () => {
  it('should refill after the launches that emptied it, so a later launch is warm again', async () => {
    // The pool fills in the background after `ready`; wait for a warm launch first.
    const warmLaunch = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const inst = await sandbox().launch(SPEC, refuse);
        expect(await inst.call('echo', '[1]', { cpuMs: 5000, wallMs: 30_000 })).toBe('[1]');
        inst.dispose();
        if (inst.warm) return;
        await pause(100);
      }
      throw new Error('no launch found the warm pool filled within 10 s');
    };
    await warmLaunch();
    // That launch took the pool's one blank: only a refill makes the next warm launch possible.
    await warmLaunch();
    await warmLaunch();
  }, 60_000);
});

describe("a sandbox process's spare instance", () => {
  // `at`: when the top-level code ran; `count`: state of this one isolate; `who`: the user `fc` is bound to.
  const SPARE_SOURCE = 'const loadedAt = Date.now(); let n = 0;\nexport function at() { return loadedAt; }\nexport function count() { return ++n; }\nexport function who() { return fc.session.user; }\n';
  const call = async (inst: { call: (m: string, a: string, l: typeof LIMITS) => Promise<string> }, method: string): Promise<unknown> => JSON.parse(await inst.call(method, 'null', LIMITS));
  /** Launches `spec`; returns the instance and when its top-level code ran, relative to when the launch was asked for (ms; < 0: ahead of it). */
  const launchAt = async (spec: TierLaunchSpec) => {
    const asked = Date.now();
    const inst = await sandbox().launch(spec, refuse);
    return { inst, ahead: asked - (await call(inst, 'at') as number) };
  };

  it('should take the spare on a repeated launch: a fresh isolate of the same user, loaded before the launch', async () => {
    const spec = specOf(SPARE_SOURCE, 'spare', '{"sub":"u-1","claims":{}}');
    for (let i = 0; i < 2; i++) {
      const { inst } = await launchAt(spec);
      expect(await call(inst, 'count')).toBe(1);
      expect(await call(inst, 'count')).toBe(2);
      inst.dispose();
    }
    await pause(400);
    const third = await launchAt(spec);
    expect(third.ahead).toBeGreaterThan(200);
    expect(await call(third.inst, 'count')).toBe(1);
    expect(await call(third.inst, 'who')).toEqual({ sub: 'u-1', claims: {} });
    third.inst.dispose();
    // Taken again: the spare after a spare.
    await pause(400);
    const fourth = await launchAt(spec);
    expect(fourth.ahead).toBeGreaterThan(200);
    fourth.inst.dispose();
  }, 60_000);

  it('should load anew, and drop the spare, when a launch differs in user or in app', async () => {
    const spec = specOf(SPARE_SOURCE, 'spare2', 'null');
    for (let i = 0; i < 2; i++) (await sandbox().launch(spec, refuse)).dispose();
    await pause(400);
    const other = await launchAt({ ...spec, metaJson: '{"app":{"id":"spare2","version":"1"},"user":{"sub":"u-2","claims":{}}}' });
    expect(other.ahead).toBeLessThanOrEqual(0);
    expect(await call(other.inst, 'who')).toEqual({ sub: 'u-2', claims: {} });
    other.inst.dispose();
    await pause(400);
    // The spare of `spec` went with the launch that differed: this one loads anew.
    const again = await launchAt(spec);
    expect(again.ahead).toBeLessThanOrEqual(0);
    expect(await call(again.inst, 'who')).toBeNull();
    again.inst.dispose();
  }, 60_000);

  it('should fail a launch as it would have when its spare failed to load, and make no spare again until a new repeat', async () => {
    // The top-level code throws once the clock passes `late`: launches before it load, after it fail.
    const late = Date.now() + 2500;
    const spec = specOf(`if (Date.now() > ${late}) throw new Error("too late");\nexport const at = () => ${late};\n`, 'spare3', 'null');
    for (let i = 0; i < 2; i++) (await sandbox().launch(spec, refuse)).dispose();
    await pause(Math.max(0, late - Date.now()) + 300);
    // The spare loaded right after the second launch, before `late`: taken, it works.
    const spare = await sandbox().launch(spec, refuse);
    expect(await spare.call('at', 'null', LIMITS)).toBe(String(late));
    spare.dispose();
    // The next spare loaded after `late` and failed: the launch loads for itself, and fails.
    await pause(300);
    await expect(sandbox().launch(spec, refuse)).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('too late') });
    await expect(sandbox().launch(spec, refuse)).rejects.toMatchObject({ code: 'invalid_request' });
  }, 60_000);
});
