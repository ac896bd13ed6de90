/**
 * The child of the process tier is untrusted: every message from it is checked field by
 * field before the host acts on it (src/sandbox/process/protocol.ts). Anything off is
 * refused (undefined), and what passes holds only the checked fields.
 */
import { describe, expect, it } from 'vitest';
import { MAX_JSON_CHARS, MAX_MESSAGE_CHARS, parseChildMessage } from '../../src/sandbox/process/protocol.ts';

describe('parseChildMessage', () => {
  it('should accept each well-formed message and keep only its known fields', () => {
    expect(parseChildMessage({ t: 'result', id: 3, json: '{"a":1}', extra: 'x' })).toEqual({ t: 'result', id: 3, json: '{"a":1}' });
    expect(parseChildMessage({ t: 'need_source', id: 4, source: 'x' })).toEqual({ t: 'need_source', id: 4 });
    expect(parseChildMessage({ t: 'launched', id: 1, methods: ['a', 'b'], warm: true })).toEqual({ t: 'launched', id: 1, methods: ['a', 'b'], warm: true });
    expect(parseChildMessage({ t: 'call_failed', id: 2, error: { code: 'timeout', message: 'm', stack: 's' }, ended: true })).toEqual({ t: 'call_failed', id: 2, error: { code: 'timeout', message: 'm' }, ended: true });
    const bytes = new ArrayBuffer(4);
    expect(parseChildMessage({ t: 'op', id: 9, call: 2, wallEnd: 1e12, op: 'storage.get', payload: '{"key":"k"}', bytes })).toEqual({ t: 'op', id: 9, call: 2, wallEnd: 1e12, op: 'storage.get', payload: '{"key":"k"}', bytes });
  });

  it('should refuse messages that are not what they claim', () => {
    const bad: unknown[] = [
      null,
      'result',
      [],
      { t: 'nope', id: 1 },
      { t: 'result', id: -1, json: '1' },
      { t: 'result', id: 1.5, json: '1' },
      { t: 'result', id: '1', json: '1' },
      { t: 'result', id: 1, json: { a: 1 } },
      { t: 'result', id: 1, json: 'x'.repeat(MAX_JSON_CHARS + 1) },
      { t: 'launched', id: 1, methods: ['a', 7], warm: true },
      { t: 'launched', id: 1, methods: [''], warm: true },
      { t: 'launched', id: 1, methods: ['a'] },
      { t: 'launch_failed', id: 1, error: { code: 'made_up', message: 'm' } },
      { t: 'call_failed', id: 1, error: { code: 'timeout', message: 'm' } },
      { t: 'op', id: 1, call: 1, wallEnd: Infinity, op: 'storage.get', payload: '{}' },
      { t: 'op', id: 1, call: 1, wallEnd: 1, op: 'Storage.Get', payload: '{}' },
      { t: 'op', id: 1, call: 1, wallEnd: 1, op: 'storage.get', payload: {} },
      { t: 'op', id: 1, call: 1, wallEnd: 1, op: 'storage.get', payload: '{}', bytes: new Uint8Array(2) },
      { t: 'ready', uid: -5, gid: 0 },
      { t: 'need_source', id: 'abc' },
    ];
    for (const m of bad) expect(parseChildMessage(m), JSON.stringify(m)?.slice(0, 200)).toBeUndefined();
  });

  it('should cut an error message from the child to its bound', () => {
    const m = parseChildMessage({ t: 'launch_failed', id: 1, error: { code: 'invalid_request', message: 'x'.repeat(MAX_MESSAGE_CHARS * 2) } });
    expect(m?.t === 'launch_failed' && m.error.message.length).toBe(MAX_MESSAGE_CHARS);
  });
});
