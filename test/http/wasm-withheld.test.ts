/**
 * `WebAssembly` is not offered (THREATS F44; issue 10, deliverable 4): a Wasm memory
 * lives outside the isolate's heap, where `memory_mb` cannot count it (measurements in
 * runtime-api/prelude/withheld.ts), so no mini-app can reach it — not as a global, not
 * through `globalThis`, not at load time — while everything else keeps working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { bearer, expectError, resultOf, startTestServer, type TestServer } from '../helpers/http-server.ts';

// The bare identifier, as mini-app code would write it (the isolate's global, not Node's).
declare const WebAssembly: unknown;

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ tenants: [{ id: 'wasmy' }] });
});
afterAll(() => s?.dispose());

describe('WebAssembly', () => {
  it('should be undefined in every instance, warm or cold', async () => {
    await s.deploy(
      'wasmy',
      'probe',
      bundleOf({
        probe: () => ({
          type: typeof WebAssembly,
          inGlobal: 'WebAssembly' in globalThis,
          names: Object.getOwnPropertyNames(globalThis).filter((n) => /wasm|webassembly/i.test(n)),
          // A Wasm module's magic number: nothing left can compile it.
          compiled: (() => {
            try {
              return typeof (globalThis as any).WebAssembly.Module;
            } catch (err) {
              return (err as Error).name;
            }
          })(),
        }),
      }),
    );
    // More instances than the warm pool holds, so cold-made isolates are checked too.
    for (let i = 0; i < 4; i++) {
      const id = await s.launch('wasmy', 'probe', `user-${i}`);
      expect(resultOf(await s.call('wasmy', id, 'probe', {}, `user-${i}`))).toEqual({ type: 'undefined', inGlobal: false, names: [], compiled: 'TypeError' });
    }
  });

  it('should refuse the upload of a bundle that uses WebAssembly at load time', async () => {
    const res = await s.inject({
      method: 'PUT',
      url: '/v1/tenants/wasmy/apps/wasm',
      headers: { ...bearer(await s.token('wasmy', 'deployer')), 'content-type': 'application/javascript' },
      payload: 'const memory = new WebAssembly.Memory({ initial: 1024 });\nexport function f() { return memory.buffer.byteLength; }\n',
    });
    expect(expectError(res, 400, 'invalid_request')).toMatch(/WebAssembly is not defined/);
  });
});
