/**
 * The CLI side of the admin socket (socket.ts): finds the running server of a data directory
 * and sends it one request. "Nobody listens" (no socket file, or a stale one) is told apart
 * from every other failure, so the CLI falls back to opening the stores itself only then.
 */
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { IsohostError, isErrorCode } from '../errors.ts';
import { adminSocketPath } from './socket-path.ts';

/**
 * A connection to the admin socket of the server that holds `dataDir`'s stores, or null when
 * no server runs there (then the stores are free to open).
 */
export async function connectAdmin(dataDir: string): Promise<Socket | null> {
  let path: string;
  try {
    path = adminSocketPath(dataDir);
  } catch {
    return null; // a path no socket can have: no server can listen there
  }
  return new Promise((resolve, reject) => {
    const socket = connect(path, () => {
      socket.off('error', fail);
      resolve(socket);
    });
    const fail = (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(null);
      else reject(new IsohostError('unavailable', `cannot reach the admin socket ${path}: ${err.code ?? err.message}`));
    };
    socket.once('error', fail);
  });
}

/**
 * Sends one request over `socket` and resolves with the response once its status is 2xx;
 * otherwise rejects with the server's coded error.
 */
export function adminRequest(socket: Socket, method: 'GET' | 'POST', path: string, body?: Readable): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ createConnection: () => socket, method, path, headers: { host: 'isohost-admin' } }, (res) => {
      if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
        resolve(res);
        return;
      }
      void readJson(res).then((json) => reject(errorFrom(json, res.statusCode)), reject);
    });
    req.on('error', (err) => reject(new IsohostError('unavailable', `admin socket: ${err.message}`)));
    if (body === undefined) {
      req.end();
      return;
    }
    body.on('error', (err) => {
      req.destroy();
      reject(new IsohostError('invalid_request', `cannot read the import file: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    body.pipe(req);
  });
}

/** The whole body of a JSON response. */
export async function readJson(res: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of res) text += String(chunk);
  try {
    return JSON.parse(text);
  } catch {
    throw new IsohostError('unavailable', `admin socket answered ${res.statusCode} with a body that is not JSON`);
  }
}

function errorFrom(json: unknown, status: number | undefined): IsohostError {
  const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (isErrorCode(error?.code) && typeof error.message === 'string') return new IsohostError(error.code, error.message);
  return new IsohostError('unavailable', `admin socket answered ${status} without a coded error`);
}
