/**
 * `Platform.backend` is the storage seam (`StorageBackend`), not one engine's class (issue
 * 11): routes and probes see only the interface, so another engine (PostgreSQL) fits
 * without a cast. Checked by the type checker (`npm test` runs `tsc --noEmit` first) and
 * at run time on a real platform.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { Platform } from '../src/platform.ts';
import type { StorageBackend } from '../src/storage/backend.ts';
import { startTestPlatform } from './helpers/platform.ts';

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'seam' }]);
});
afterAll(() => p.dispose());

describe('Platform.backend', () => {
  it('should be typed as the StorageBackend interface and answer its probe', async () => {
    expectTypeOf<Platform['backend']>().toEqualTypeOf<StorageBackend>();
    await expect(p.backend.check()).resolves.toBeUndefined();
  });
});
