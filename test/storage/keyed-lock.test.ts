import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../../src/storage/keyed-lock.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyedLock', () => {
  it('should run work on one key one at a time, in arrival order', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string) => lock.run(['k'], async () => {
      log.push(`${name}+`);
      await tick();
      log.push(`${name}-`);
    });
    await Promise.all([job('a'), job('b'), job('c')]);
    expect(log).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    expect(lock.size).toBe(0);
  });

  it('should run different keys concurrently and multi-key holders without deadlock', async () => {
    const lock = new KeyedLock();
    let running = 0;
    let peak = 0;
    const job = (keys: string[]) => lock.run(keys, async () => {
      peak = Math.max(peak, ++running);
      await tick();
      running--;
    });
    await Promise.all([job(['x']), job(['y']), job(['x', 'y']), job(['y', 'x']), job(['z', 'x']), job(['z'])]);
    expect(peak).toBe(2);
    expect(lock.size).toBe(0);
  });

  it('should release the keys when the work throws', async () => {
    const lock = new KeyedLock();
    await expect(lock.run(['k'], async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await lock.run(['k'], async () => 'next')).toBe('next');
    expect(lock.size).toBe(0);
  });
});
