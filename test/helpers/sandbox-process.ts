/**
 * One real sandbox process (src/sandbox/process/supervised-process.ts) for the tests of a
 * file or a describe block: started before them with a 64 MB plan and a warm pool of one,
 * killed after them.
 */
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { preludeSource } from '../../src/sandbox/prelude-build.ts';
import { planFor } from '../../src/sandbox/process/protections.ts';
import { SandboxProcess } from '../../src/sandbox/process/supervised-process.ts';

/** Registers the hooks where it is called; returns the process, there once the tests run. */
export function useSandboxProcess(tenantId: string, logger: Logger = pino({ level: 'silent' })): () => SandboxProcess {
  let proc: SandboxProcess | undefined;
  beforeAll(async () => {
    preludeSource(); // the host builds the prelude the child reads, as openPlatform does
    proc = new SandboxProcess({ tenantId, plan: planFor(0, { memory_mb: 64, instances: 10 }, 1), memoryMb: 64, warm: 1, logger, onExit() {} });
    await proc.ready;
  }, 60_000);
  afterAll(async () => {
    proc?.kill();
    await proc?.exited();
  });
  return () => proc!;
}
