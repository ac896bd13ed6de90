/**
 * The answers the egress proxy makes itself (407, 403, 502): a JSON body
 * `{ error: { code, message } }` like every isohost error, plus `X-Isohost-Egress-Error`
 * and `-Message` headers. The headers are what the fetch binding reads: undici drops the
 * body of a refused CONNECT, and the proxy strips these names from upstream responses,
 * so their presence proves the answer came from the proxy.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { EGRESS_ERROR_HEADER, EGRESS_MESSAGE_HEADER } from './headers.ts';

// RFC 9110 §11.7.1: a 407 must say how to authenticate.
const AUTHENTICATE = 'Bearer realm="isohost-egress"';

function answerHeaders(code: string, message: string, status: number): Record<string, string> {
  const body = JSON.stringify({ error: { code, message } });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
    [EGRESS_ERROR_HEADER]: code,
    // Header values must be visible ASCII; hosts are punycode already.
    [EGRESS_MESSAGE_HEADER]: message.replace(/[^\x20-\x7e]/g, '?'),
  };
  if (status === 407) headers['proxy-authenticate'] = AUTHENTICATE;
  return headers;
}

const STATUS_OF = { egress_denied: 403, egress_failed: 502, unauthenticated: 407 } as const;
export type AnswerCode = keyof typeof STATUS_OF;

export function answerHttp(res: ServerResponse, code: AnswerCode, message: string): void {
  const status = STATUS_OF[code];
  res.writeHead(status, answerHeaders(code, message, status));
  res.end(JSON.stringify({ error: { code, message } }));
}

export function answerRaw(socket: Duplex, code: AnswerCode, message: string): void {
  const status = STATUS_OF[code];
  const head = Object.entries(answerHeaders(code, message, status)).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${JSON.stringify({ error: { code, message } })}`);
}

