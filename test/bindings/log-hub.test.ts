import { describe, expect, it } from 'vitest';
import { LOG_RING_BYTES, LOG_RING_LINES, TenantLogHub, type TenantLogEntry } from '../../src/bindings/log/hub.ts';

function callEntry(i: number, request_id: string | null = `req-${i}`): TenantLogEntry {
  return { time: new Date(1_700_000_000_000 + i).toISOString(), type: 'call', request_id, app: 'shop', version: 'v-0123456789abcdef', instance: null, method: 'buy', outcome: 'ok', ms: 1.234 + i };
}

describe('TenantLogHub', () => {
  it('should read a call outcome published without subscribers as the JSON of its entry', () => {
    const hub = new TenantLogHub();
    const e = callEntry(1);
    hub.publish(e);
    hub.publish(callEntry(2, null));
    expect(hub.recent()).toEqual([JSON.stringify(e), JSON.stringify(callEntry(2, null))]);
    // Read twice: the same text.
    expect(hub.recent('shop')[0]).toBe(JSON.stringify(e));
    expect(hub.recent('other')).toEqual([]);
  });

  it('should send a call outcome to a subscriber as JSON at once', () => {
    const hub = new TenantLogHub();
    const seen: [string, string][] = [];
    const stop = hub.subscribe((text, app) => seen.push([text, app]));
    hub.publish(callEntry(3));
    stop();
    expect(seen).toEqual([[JSON.stringify(callEntry(3)), 'shop']]);
    expect(hub.recent()).toEqual([JSON.stringify(callEntry(3))]);
  });

  it('should keep a mini-app log line as it was when published, even if its fields change later', () => {
    const hub = new TenantLogHub();
    const fields = { n: 1 };
    hub.publish({ time: new Date(0).toISOString(), type: 'log', request_id: null, app: 'shop', version: 'v1', instance: 'i1', level: 'info', msg: 'hi', fields });
    fields.n = 2;
    expect(JSON.parse(hub.recent()[0]!).fields).toEqual({ n: 1 });
  });

  it('should keep at most LOG_RING_LINES lines, oldest dropped first, deferred or not', () => {
    const hub = new TenantLogHub();
    for (let i = 0; i < LOG_RING_LINES + 10; i++) hub.publish(callEntry(i));
    const lines = hub.recent();
    expect(lines).toHaveLength(LOG_RING_LINES);
    expect(JSON.parse(lines[0]!).request_id).toBe('req-10');
  });

  it('should count deferred call lines against LOG_RING_BYTES by their JSON length, never less', () => {
    const hub = new TenantLogHub();
    // One big log line, then calls until the ring drops the big line to stay within its bytes.
    const entry = { time: new Date(0).toISOString(), type: 'log' as const, request_id: null, app: 'shop', version: 'v1', instance: 'i1', level: 'info', msg: 'x'.repeat(LOG_RING_BYTES - 50_000) };
    const bigLength = JSON.stringify(entry).length;
    hub.publish(entry);
    const callLengths: number[] = [];
    while (hub.recent().length === callLengths.length + 1) {
      hub.publish(callEntry(callLengths.length));
      callLengths.push(JSON.stringify(callEntry(callLengths.length)).length);
    }
    const room = LOG_RING_BYTES - bigLength;
    const sum = (n: number) => callLengths.slice(0, n).reduce((a, b) => a + b, 0);
    // Kept while the calls' real JSON fitted beside it (a count below their size would keep it longer)…
    expect(sum(callLengths.length - 1)).toBeLessThanOrEqual(room);
    // …and dropped not much before their real size filled the room (the count is close).
    expect(sum(callLengths.length)).toBeGreaterThan(room * 0.85);
  });
});
