/**
 * The sandbox process's warm pool (src/sandbox/process/child-tier.ts): a launch takes a
 * blank isolate from it, and the pool makes the replacement a little after the launch
 * rather than at once — but it does make it, so later launches find the pool warm again.
 * A real sandbox process with a warm pool of one.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { preludeSource } from '../../src/sandbox/prelude-build.ts';
import { planFor } from '../../src/sandbox/process/protections.ts';
import { SandboxProcess } from '../../src/sandbox/process/supervised-process.ts';
import type { TierLaunchSpec } from '../../src/sandbox/tier.ts';

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
const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform ops here'));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let proc: SandboxProcess;

beforeAll(async () => {
  preludeSource(); // the host builds the prelude the child reads, as openPlatform does
  proc = new SandboxProcess({ tenantId: 't-pool', plan: planFor(0, { memory_mb: 64, instances: 10 }, 1), memoryMb: 64, warm: 1, logger: pino({ level: 'silent' }), onExit() {} });
  await proc.ready;
}, 60_000);

afterAll(async () => {
  proc?.kill();
  await proc?.exited();
});

describe("a sandbox process's warm pool", () => {
  it('should refill after the launches that emptied it, so a later launch is warm again', async () => {
    // The pool fills in the background after `ready`; wait for a warm launch first.
    const warmLaunch = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const inst = await proc.launch(SPEC, refuse);
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
