/**
 * THREATS B13 — the known hole, pinned. Some allocations escape isolated-vm's memory
 * limit: a Map, Set or dictionary-mode object grown until one rehash needs more than the
 * heap has left makes V8 give up on the whole process ("CALL_AND_RETRY_LAST", isolated-vm
 * #457, #527, #107 — all open). The host cannot survive it: the isolate's thread never
 * returns, and the process can no longer even exit normally. What isohost does (bridge.ts
 * `onCatastrophicError`): write one fatal JSON line naming tenant/app@version/instance,
 * then abort — so the supervisor restarts the host and the operator knows whose code did
 * it. docs/SECURITY.md states this limit and its answer (the process tier for untrusted
 * partners; small cpu_ms keeps one call from growing that far).
 *
 * Run through the real CLI in a child process, since the process is what dies (its cwd
 * is the temp dir, so a core dump, where enabled, never lands in the checkout).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { writeConfigFile } from '../helpers/security-fixtures.ts';
import { tempDir } from '../helpers/tmp.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let configFile: string;

beforeAll(async () => {
  dir = await tempDir('isohost-sec-oom-');
  configFile = writeConfigFile(dir.path, [{ id: 'oom-tenant', namespace: 'ns-oom', limits: { memory_mb: 16, cpu_ms: 20_000, wall_ms: 30_000 } }]);
  await writeFile(join(dir.path, 'flood.js'), 'export function mapFlood() { const m = new Map(); for (let i = 0; ; i++) m.set(i, "v" + i); }\n');
});
afterAll(() => dir.dispose());

describe('a heap OOM that escapes the memory limit (B13, known limit)', () => {
  it('should abort the host with one fatal line naming the tenant, app and instance', async () => {
    const res = await cli(['run', join(dir.path, 'flood.js'), '--tenant', 'oom-tenant', '--call', 'mapFlood', '--config', configFile], { timeoutMs: 20_000, cwd: dir.path });
    // Killed by a signal (SIGABRT), not an exit code, and not our 20 s watchdog.
    expect(res.code).toBeNull();
    const fatal = res.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 60);
    expect(fatal).toMatchObject({ msg: 'V8 lost control of an isolate; aborting the process', error: 'Catastrophic out-of-memory error' });
    expect(String(fatal!.isolate)).toMatch(/^oom-tenant\/flood@[0-9a-f]{16}\/i_[A-Za-z0-9_-]+$/);
    expect(res.stdout).toBe('');
  });
});
