/**
 * THREATS F42: built-ins that do not check for interrupts, in a bundle's top-level code.
 * Before: top-level code ran on the host's main thread under `runSync`'s timeout; five
 * seconds past it isolated-vm raised "Script failed to terminate" and its catastrophic
 * path crashed the process (SIGSEGV in UvScheduler::IncrementUvRef). Now it runs on the
 * isolate's thread with no isolated-vm timeout at all: the host's deadline disposes the
 * isolate, the built-in finishes on its own thread, and the tenant gets a coded error.
 *
 * Through the HTTP API on a real port; /healthz must answer within 1 s and another
 * tenant's calls must succeed, during and after each attack.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACKER, type AttackServer, missesOf, startAttackServer } from '../helpers/attack-server.ts';

let s: AttackServer;
beforeAll(async () => {
  s = await startAttackServer();
});
afterAll(() => s.close());

const ATTACKS: [name: string, topLevel: string][] = [
  ['a regexp replace over 60 M characters', 'const s = "a".repeat(6e7).replace(/a/g, "b");'],
  ['a 500 000-digit BigInt to string', 'const s = String(7n ** 600000n);'],
  ['NFKC normalisation of 6 M ligatures', 'const s = "\\uFB01".repeat(6e6).normalize("NFKC");'],
  ['Turkish upper-casing of 6 M characters', 'const s = "i".repeat(6e6).toLocaleUpperCase("tr");'],
];

describe('uninterruptible built-ins at top level (F42)', () => {
  it.each(ATTACKS)('should end %s with a coded limit error, the host serving everyone meanwhile', async (name, topLevel) => {
    const appId = `f42-${ATTACKS.findIndex(([n]) => n === name)}`;
    const { result, watch } = await s.during(() => s.deploy(ATTACKER, appId, `${topLevel}\nexport function f() { return s.length; }`));
    expect(missesOf(watch)).toEqual([]);
    expect(result.status, JSON.stringify(result.body)).not.toBe(201);
    expect(['timeout', 'resource_exhausted']).toContain(result.body.error.code);
  });

  it('should still serve the attacker and the victim afterwards (the process never crashed)', async () => {
    const { result, watch } = await s.during(() => s.deploy(ATTACKER, 'after', 'export function ok() { return "fine"; }'));
    expect(missesOf(watch)).toEqual([]);
    expect(result.status).toBe(201);
    expect((await s.call(ATTACKER, 'after', 'ok')).body).toEqual({ result: 'fine' });
  });
});
