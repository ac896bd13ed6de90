/**
 * A bundle's source crosses to a sandbox process once (src/sandbox/process/source-cache.ts):
 * the child keeps sources by sha256 in a cache bounded in bytes, the host runs the same
 * cache as a mirror and leaves the source out of a launch the child can serve. Real
 * sandbox processes, real isolates.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { IsohostError } from '../../src/errors.ts';
import { SOURCE_CACHE_MAX_BYTES, SourceCache } from '../../src/sandbox/process/source-cache.ts';
import type { TierLaunchSpec } from '../../src/sandbox/tier.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { useSandboxProcess } from '../helpers/sandbox-process.ts';

describe('SourceCache', () => {
  it('should keep what fits its byte budget and let the least recently used go first', () => {
    const cache = new SourceCache<string>(16);
    cache.put('a', 'A', 6);
    cache.put('b', 'B', 6);
    expect(cache.get('a')).toBe('A'); // now b is the least recently used
    cache.put('c', 'C', 6);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe('A');
    expect(cache.get('c')).toBe('C');
    expect(cache.bytes).toBe(12);
    cache.put('big', 'X', 17);
    expect(cache.get('big')).toBeUndefined();
    expect(cache.bytes).toBe(12);
    cache.put('a', 'A2', 6); // already held: kept as it was, made most recent
    expect(cache.get('a')).toBe('A');
    expect(cache.bytes).toBe(12);
  });
});

describe('bundle sources sent to a sandbox process', () => {
  const warnings: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, done) {
        warnings.push(String(chunk));
        done();
      },
    }),
  );
  const sandbox = useSandboxProcess('t-src', logger);
  const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform ops here'));
  const limits = { cpuMs: 5000, wallMs: 30_000 };

  /** A bundle of about `bytes` bytes (a comment pads it) whose one method answers `name`. */
  function specOf(name: string, bytes: number): TierLaunchSpec {
    const source = bundleOf({ who: new Function(`return ${JSON.stringify(name)};`) as () => string }, `// ${'x'.repeat(bytes)}`);
    const sha256 = createHash('sha256').update(source).digest('hex');
    return { source, sha256, metaJson: '{"app":{"id":"src","version":"1"},"user":null}', label: `t-src/${name}@1/i`, memoryMb: 64, cpuMs: 5000, wallMs: 30_000 };
  }

  async function launchAndCall(spec: TierLaunchSpec): Promise<string> {
    const inst = await sandbox().launch(spec, refuse);
    try {
      return await inst.call('who', 'null', limits);
    } finally {
      inst.dispose();
    }
  }

  it('should send a source once, then launch the same bundle from the copy the child keeps', async () => {
    const spec = specOf('small', 100);
    expect(await launchAndCall(spec)).toBe('"small"');
    const sent = sandbox().sourcesSent;
    expect(await launchAndCall(spec)).toBe('"small"');
    expect(await launchAndCall(spec)).toBe('"small"');
    expect(sandbox().sourcesSent).toBe(sent);
  });

  it('should send a source again once the bounded cache let it go, the host and the child agreeing on which', async () => {
    const third = Math.floor(SOURCE_CACHE_MAX_BYTES * 0.4);
    const [a, b, c] = [specOf('a', third), specOf('b', third), specOf('c', third)];
    const before = sandbox().sourcesSent;
    expect(await launchAndCall(a)).toBe('"a"');
    expect(await launchAndCall(b)).toBe('"b"');
    expect(await launchAndCall(c)).toBe('"c"'); // a leaves the cache on both sides
    expect(sandbox().sourcesSent).toBe(before + 3);
    expect(await launchAndCall(a)).toBe('"a"'); // sent again, making room by letting b go
    expect(sandbox().sourcesSent).toBe(before + 4);
    expect(await launchAndCall(c)).toBe('"c"'); // still held: not sent
    expect(sandbox().sourcesSent).toBe(before + 4);
    // Had the mirror been wrong, the child would have asked for a source (a warning line).
    expect(warnings.join('')).not.toContain('lacked a bundle source');
    expect(sandbox().alive).toBe(true);
  }, 120_000);
});
