/**
 * Wires the guest prelude's host port to the real `handleSyncOp` in plain Node, and
 * lets a test answer the async ops (fetch) with canned replies. Each vitest file
 * gets its own module graph, so the port is attached once per file.
 */
import { installHostPort, settle } from '../../runtime-api/prelude/host.ts';
import { handleSyncOp } from '../../src/sandbox/host-utilities.ts';

export interface Posted { op: string; payload: any; bytes: ArrayBuffer | undefined }
export type Reply =
  | { ok: true; json: unknown; bytes?: ArrayBuffer }
  | { ok: false; code: string; message: string };

let answer: (p: Posted) => Reply | Promise<Reply> = () => ({ ok: false, code: 'invalid_request', message: 'no handler' });
export const posted: Posted[] = [];
let attached = false;

/** Attaches the port (once). `respond` answers every async op until replaced. */
export function attachHost(respond?: (p: Posted) => Reply | Promise<Reply>): void {
  if (respond) answer = respond;
  if (attached) return;
  attached = true;
  installHostPort(
    (op, payload) => handleSyncOp(op, payload),
    (id, op, payload, bytes) => {
      const p = { op, payload: JSON.parse(payload), bytes };
      posted.push(p);
      // Settled on a later turn, as the bridge does.
      setTimeout(async () => {
        const r = await answer(p);
        if (r.ok) settle(id, true, JSON.stringify(r.json), r.bytes);
        else settle(id, false, JSON.stringify({ code: r.code, message: r.message }), undefined);
      }, 0);
    },
  );
}
