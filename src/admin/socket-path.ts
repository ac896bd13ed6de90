/**
 * Where a server's admin socket lives: `<data_dir>/admin.sock`. The data directory names the
 * server: the stores under it can be held by one process only, so the CLI finds the one
 * running server (if any) of the stores it was pointed at.
 */
import { resolve } from 'node:path';
import { IsohostError } from '../errors.ts';

/** sun_path is 108 bytes on Linux, NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

/** The admin socket path for a data directory; `config_invalid` when the path cannot be a socket. */
export function adminSocketPath(dataDir: string): string {
  const path = resolve(dataDir, 'admin.sock');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new IsohostError(
      'config_invalid',
      `deployment.data_dir: ${path} is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH_BYTES} a Unix socket path may have; use a shorter data_dir`,
    );
  }
  return path;
}
