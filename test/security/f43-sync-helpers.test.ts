/**
 * THREATS F43: synchronous host helpers fed hostile input. A guest's `new URL(…)` or
 * `new URLSearchParams(…)` used to call Node's parsers on the host's event loop while
 * the guest waited — and Node's form-urlencoded parser is quadratic in the number of
 * pairs: `new URLSearchParams("a&".repeat(524288))` held every tenant's event loop for
 * ~0.9 s while the guest's own CPU stayed under its 50 ms. Now form-urlencoded parsing
 * runs in the isolate (charged to the guest's CPU budget) and URL input is bounded on
 * both sides of the boundary (src/sandbox/host-utilities.ts MAX_URL_CHARS).
 *
 * Through the HTTP API on a real port; /healthz must answer within 1 s and another
 * tenant's calls must succeed, during and after each attack.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACKER, type AttackServer, missesOf, startAttackServer } from '../helpers/attack-server.ts';
import { bundleOf } from '../helpers/bundle.ts';

const app = bundleOf({
  searchParams(n: number) {
    return new URLSearchParams('a&'.repeat(n)).size;
  },
  searchParamsEncoded(n: number) {
    return new URLSearchParams('%C3%A9=%E2%82%AC+&'.repeat(n)).getAll('é').length;
  },
  hugeUrl(n: number) {
    try {
      return new URL('https://x.test/' + 'é'.repeat(n)).pathname.length;
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  },
  hugeSearch(n: number) {
    const u = new URL('https://x.test/');
    try {
      u.search = 'a&'.repeat(n);
      return u.href.length;
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  },
  urlLoop() {
    // Each parse is bounded (well under 1 ms of host time); the host time they add up to is the guest's CPU.
    const long = 'https://x.test/' + 'é'.repeat(8000);
    for (;;) new URL(long);
  },
  hugeParamsOnUrl(n: number) {
    const u = new URL('https://x.test/');
    try {
      for (let i = 0; i < n; i++) u.searchParams.append('k' + i, 'v');
      return u.href.length;
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  },
});

let s: AttackServer;
beforeAll(async () => {
  // The default CPU budget (50 ms): the attack must not be able to spend more of the host's time than that.
  s = await startAttackServer();
  expect((await s.deploy(ATTACKER, 'helpers', app)).status).toBe(201);
});
afterAll(() => s.close());

async function attack(method: string, arg: number) {
  const { result, watch } = await s.during(() => s.call(ATTACKER, 'helpers', method, arg));
  expect(missesOf(watch)).toEqual([]);
  return result;
}

describe('synchronous host helpers under hostile input (F43)', () => {
  it('should parse small search params in the isolate as before', async () => {
    expect((await s.call(ATTACKER, 'helpers', 'searchParams', 3)).body).toEqual({ result: 3 });
    expect((await s.call(ATTACKER, 'helpers', 'searchParamsEncoded', 2)).body).toEqual({ result: 2 });
  });

  it('should charge new URLSearchParams of 1 MiB of "a&" to the guest: done within its CPU budget or ended with timeout', async () => {
    const res = await attack('searchParams', 512 * 1024);
    if (res.status === 200) expect(res.body.result).toBe(512 * 1024);
    else expect(res.body.error.code).toBe('timeout');
  });

  it('should charge a percent-encoded flood to the guest the same way', async () => {
    const res = await attack('searchParamsEncoded', 64 * 1024);
    if (res.status === 200) expect(res.body.result).toBe(64 * 1024);
    else expect(res.body.error.code).toBe('timeout');
  });

  it('should refuse a URL past the bound with a TypeError before the host parses it', async () => {
    // Past the URL bound (8 Ki chars), and past the 64 Ki sync-payload bound; not 1 Mi: building
    // a 1 Mi-char string alone can take the default 50 ms of CPU on a busy machine.
    for (const n of [9000, 100_000]) {
      const res = await attack('hugeUrl', n);
      expect(typeof res.body.result, JSON.stringify(res.body).slice(0, 500)).toBe('string');
      expect(res.body.result).toMatch(/^TypeError: .*longer than/);
    }
  });

  it('should refuse a search setter past the bound the same way', async () => {
    expect((await attack('hugeSearch', 512 * 1024)).body.result).toMatch(/^TypeError: .*longer than/);
  });

  it('should end a loop of bounded URL parses with timeout, the host serving everyone meanwhile', async () => {
    const res = await attack('urlLoop', 0);
    expect(res.body.error.code).toBe('timeout');
  });

  it('should refuse growing a URL through searchParams past the bound', async () => {
    const res = await attack('hugeParamsOnUrl', 5000);
    if (res.status === 200) expect(res.body.result).toMatch(/^TypeError: .*longer than/);
    else expect(res.body.error.code).toBe('timeout');
  });
});
