/**
 * A call's answer comes after every message its guest posted before it (bridge.ts
 * #release, prelude host.ts stampResult). isolated-vm can resolve an apply's promise on
 * the host ahead of messages the guest posted while it ran: the apply's last part is
 * queued for the host when the guest's method first awaits, and when the host gets to it
 * only after the guest has finished (its thread held meanwhile), it resolves at once,
 * before the messages the guest posted since. A message that comes after its call has
 * ended is dropped, so the call's last log lines were lost: once in a full `npm test`
 * on 2 cores (log-batching.test.ts, the line after an await).
 *
 * Here the host's thread is held on purpose right after it answers the guest's one
 * platform op, while the guest goes on to log a line and return: the log message must
 * reach the handler, as the call's, before the call's answer does. The real bridge and
 * a real isolate; the handler stands in for the host's bindings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, type SandboxInstance } from '../../src/sandbox/bridge.ts';
import { IsolatePool } from '../../src/sandbox/isolate-pool.ts';
import type { CallTag, MessageHandler } from '../../src/sandbox/tier.ts';
import { bundleOf } from '../helpers/bundle.ts';

declare const fc: any;

const SOURCE = bundleOf({
  async tail(a: { i: number }) {
    await fc.storage.get('k');
    fc.log.info('the tail line', { i: a.i });
    return a.i;
  },
});

/** Holds this thread for `ms`. */
function hold(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

const CALLS = 20;
let pool: IsolatePool;
let instance: SandboxInstance;
/** What the handler saw, in order, with the call (tag) each came with. */
const seen: { op: string; i?: number; tag: CallTag | undefined }[] = [];

beforeAll(async () => {
  pool = new IsolatePool(0);
  const handler: MessageHandler = async (op, payload, _bytes, tag) => {
    if (op === 'storage.get') {
      seen.push({ op, tag });
      // After this reply is on its way into the isolate (a microtask after this one), hold
      // the host's thread while the guest logs and returns.
      queueMicrotask(() => queueMicrotask(() => hold(30)));
      return { json: '{"value":null}' };
    }
    if (op === 'log') {
      const lines = (payload as { lines: { fields?: { i?: number } }[] }).lines;
      for (const l of lines) seen.push({ op, i: l.fields?.i, tag });
      return { json: '{}' };
    }
    return { json: 'null' };
  };
  const { blank } = await pool.take(64);
  const sha256 = 'result-ordering'.padEnd(64, '0');
  instance = await launch(blank, { source: SOURCE, sha256, metaJson: '{"app":{"id":"ordering","version":"1"},"user":null}', label: 'result-ordering', memoryMb: 64, cpuMs: 5000, wallMs: 30_000 }, handler);
}, 60_000);

afterAll(() => {
  instance?.dispose();
  pool?.close();
});

describe("a call's answer and the messages its guest posted before it", () => {
  it('should hand the handler the last log line of a call, as that call’s, before the call answers', async () => {
    for (let i = 0; i < CALLS; i++) {
      const tag: CallTag = { started() {} };
      const before = seen.length;
      const result = await instance.call('tail', JSON.stringify({ i }), { cpuMs: 5000, wallMs: 30_000 }, tag);
      expect(result).toBe(String(i));
      // Everything of this call, in order, is there by the time it answered.
      const ofThisCall = seen.slice(before);
      expect(ofThisCall.map((s) => s.op), `call ${i}`).toEqual(['storage.get', 'log']);
      expect(ofThisCall[1]!.i).toBe(i);
      expect(ofThisCall.every((s) => s.tag === tag)).toBe(true);
    }
  }, 60_000);
});
