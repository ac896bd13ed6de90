/**
 * Bundle checks that need no isolate (CONTRACT §2): size and UTF-8. Compilation,
 * imports and exports are checked by a validation launch (validate.ts).
 */
import { createHash } from 'node:crypto';
import { IsohostError } from '../errors.ts';

export interface BundleSource {
  source: string;
  sha256: string;
  size: number;
}

/** An app version is the first 16 hex digits of its bundle's sha256 (content-addressed). */
export function versionOf(sha256: string): string {
  return sha256.slice(0, 16);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function readBundle(bytes: Uint8Array, maxBytes: number): BundleSource {
  if (bytes.byteLength === 0) throw new IsohostError('invalid_request', 'bundle is empty');
  if (bytes.byteLength > maxBytes) {
    throw new IsohostError('payload_too_large', `bundle is ${bytes.byteLength} bytes; the limit is ${maxBytes} bytes`);
  }
  let source: string;
  try {
    source = utf8.decode(bytes);
  } catch {
    throw new IsohostError('invalid_request', 'bundle is not valid UTF-8');
  }
  return { source, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.byteLength };
}
