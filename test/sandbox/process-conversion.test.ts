/**
 * A sandbox process runs no esbuild: the host converts each bundle to its script form
 * (src/sandbox/script-form.ts convert) and sends the conversion with the source
 * (src/sandbox/process/supervised-process.ts conversionOf), and the process's own warm-up
 * bundle comes converted (src/sandbox/process/warm-up.ts). Real sandbox processes, real
 * isolates, the process table read from /proc.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { WARM_UP_CONVERTED, WARM_UP_SOURCE } from '../../src/sandbox/process/warm-up.ts';
import { convert } from '../../src/sandbox/script-form.ts';
import type { TierLaunchSpec } from '../../src/sandbox/tier.ts';
import { childrenOf, commOf } from '../helpers/proc.ts';
import { useSandboxProcess } from '../helpers/sandbox-process.ts';

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
  const sandbox = useSandboxProcess('t-conv');
  const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform ops here'));
  const limits = { cpuMs: 5000, wallMs: 30_000 };
  /** Command names of the sandbox's child processes. */
  const sandboxChildren = () => childrenOf(sandbox().pid!).map(commOf);

  it('should launch, call and map an error to its bundle line with no esbuild process of its own', async () => {
    // Line 3 of the bundle throws; the error names that line only if the map made on the host reached the child.
    const source = 'export function ok() { return 1; }\nexport function fail() {\n  throw new Error("boom");\n}\n';
    const inst = await sandbox().launch(specOf(source, 'map'), refuse);
    expect(await inst.call('ok', 'null', limits)).toBe('1');
    const err = await inst.call('fail', 'null', limits).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).message).toContain('boom');
    expect((err as IsohostError).message).toContain('(bundle line 3)');
    inst.dispose();
    expect(sandbox().pid).toBeGreaterThan(0);
    expect(sandboxChildren()).not.toContain('esbuild');
  });

  it('should report a bundle esbuild refuses as before, from the host\'s conversion, still with no esbuild in the process', async () => {
    // V8's module parser accepts top-level await; the script form cannot have it.
    const err = await sandbox().launch(specOf('await 0;\nexport function f() { return 1; }\n', 'tla'), refuse).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).code).toBe('invalid_request');
    expect((err as IsohostError).message).toContain('top-level await is not supported');
    expect(sandboxChildren()).not.toContain('esbuild');
    expect(sandbox().alive).toBe(true);
  });
});
