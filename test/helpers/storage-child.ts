import { fileURLToPath } from 'node:url';
import { spawnLineChild, type LineChild } from './child-lines.ts';

const WRITER = fileURLToPath(new URL('../storage/fixtures/storage-writer.ts', import.meta.url));

/** A running storage-writer child and the stdout lines it printed so far. */
export type WriterChild = LineChild;

/** Spawns test/storage/fixtures/storage-writer.ts with the same node binary. */
export function spawnWriter(mode: 'set' | 'batch' | 'hold' | 'open', dataDir: string, isolation: string): WriterChild {
  return spawnLineChild('writer', WRITER, [mode, dataDir, isolation]);
}
