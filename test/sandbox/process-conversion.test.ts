/**
 * A sandbox process runs no esbuild: the host converts each bundle to its script form
 * (src/sandbox/script-form.ts convert) and sends the conversion with the source
 * (src/sandbox/process/supervised-process.ts conversionOf), and the process's own warm-up
 * bundle comes converted (src/sandbox/process/warm-up.ts). Real sandbox processes, real
 * isolates, the process table read from /proc.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { preludeSource } from '../../src/sandbox/prelude-build.ts';
import { planFor } from '../../src/sandbox/process/protections.ts';
import { SandboxProcess } from '../../src/sandbox/process/supervised-process.ts';
import { WARM_UP_CONVERTED, WARM_UP_SOURCE } from '../../src/sandbox/process/warm-up.ts';
import { convert } from '../../src/sandbox/script-form.ts';
import type { TierLaunchSpec } from '../../src/sandbox/tier.ts';

/** Command names of the processes whose parent is `pid`. */
function childrenOf(pid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid) out.push(stat.slice(stat.indexOf('(') + 1, close));
    } catch {
      // the process ended while we read
    }
  }
  return out;
}

function specOf(source: string, label: string): TierLaunchSpec {
  const sha256 = createHash('sha256').update(source).digest('hex');
  return { source, sha256, metaJson: '{"app":{"id":"conv","version":"1"},"user":null}', label: `t-conv/${label}@1/i`, memoryMb: 64, cpuMs: 5000, wallMs: 30_000 };
}

describe('the warm-up bundle', () => {
  it('should carry exactly the conversion esbuild makes of it', async () => {
    expect(await convert(WARM_UP_SOURCE)).toEqual({ ...WARM_UP_CONVERTED });
  });
});

describe('a sandbox process and esbuild', () => {
  let proc: SandboxProcess;
  const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform ops here'));
  const limits = { cpuMs: 5000, wallMs: 30_000 };

  beforeAll(async () => {
    preludeSource(); // the host builds the prelude the child reads, as openPlatform does
    proc = new SandboxProcess({ tenantId: 't-conv', plan: planFor(0, { memory_mb: 64, instances: 10 }, 1), memoryMb: 64, warm: 1, logger: pino({ level: 'silent' }), onExit() {} });
    await proc.ready;
  }, 60_000);

  afterAll(async () => {
    proc?.kill();
    await proc?.exited();
  });

  it('should launch, call and map an error to its bundle line with no esbuild process of its own', async () => {
    // Line 3 of the bundle throws; the error names that line only if the map made on the host reached the child.
    const source = 'export function ok() { return 1; }\nexport function fail() {\n  throw new Error("boom");\n}\n';
    const inst = await proc.launch(specOf(source, 'map'), refuse);
    expect(await inst.call('ok', 'null', limits)).toBe('1');
    const err = await inst.call('fail', 'null', limits).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).message).toContain('boom');
    expect((err as IsohostError).message).toContain('(bundle line 3)');
    inst.dispose();
    expect(proc.pid).toBeGreaterThan(0);
    expect(childrenOf(proc.pid!)).not.toContain('esbuild');
  });

  it('should report a bundle esbuild refuses as before, from the host\'s conversion, still with no esbuild in the process', async () => {
    // V8's module parser accepts top-level await; the script form cannot have it.
    const err = await proc.launch(specOf('await 0;\nexport function f() { return 1; }\n', 'tla'), refuse).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('invalid_request');
    expect((err as IsohostError).message).toContain('top-level await is not supported');
    expect(childrenOf(proc.pid!)).not.toContain('esbuild');
    expect(proc.alive).toBe(true);
  });
});
