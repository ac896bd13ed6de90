/**
 * The spawner (issue 10, the `crash` neighbour): sandbox processes are forked by a
 * spawner process, never by the host's main thread, whose fork would copy the host's
 * memory map on its event loop. Real processes throughout:
 * - a sandbox process's parent (/proc PPid) is the spawner, and the spawner's is the host;
 * - the spawner SIGKILLed: the process tenant's in-flight call fails `unavailable`, the
 *   shared tenant goes on, the orphaned sandbox exits, and the next call succeeds;
 * - the host ↔ child channel: frames carry ArrayBuffers intact, and a child's length
 *   prefix over the bound is a violation that closes the channel (the child then exits);
 * - the sandbox code cache the spawner primes: owned by the host's uid, read-only (0755
 *   directories, 0444 files), handed to the children started after it (NODE_COMPILE_CACHE),
 *   and a sandbox process started with it serves calls; one a SIGKILLed spawner left behind
 *   is removed by the next spawner.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameChannel } from '../../src/sandbox/process/frame-channel.ts';
import { MAX_CHILD_FRAME_BYTES } from '../../src/sandbox/process/protocol.ts';
import { killSandbox, spawnerPid, spawnSandbox, type SpawnedExit } from '../../src/sandbox/process/spawner.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { startProcessServer, until, type ProcessServer } from '../helpers/process-server.ts';

declare const fc: any;

const APP = bundleOf({
  async put(a: { key: string; value: unknown }) {
    await fc.storage.set(a.key, a.value);
    return true;
  },
  async linger(a: { tag: string }) {
    fc.log.info('lingering', { tag: a.tag });
    await new Promise((r) => setTimeout(r, 20_000));
    return 'woke';
  },
});

let server: ProcessServer;

beforeAll(async () => {
  server = await startProcessServer([
    { id: 'unit-a', limits: { cpu_ms: 2000, wall_ms: 30_000 } },
    { id: 'acme', compute: 'process', limits: { cpu_ms: 2000, wall_ms: 30_000 } },
  ]);
  await server.deploy('unit-a', 'app', APP);
  await server.deploy('acme', 'app', APP);
}, 60_000);

afterAll(() => server?.close());

function ppidOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('the spawner', () => {
  it("should be the parent of a tenant's sandbox process, and the host the spawner's, so the host's main thread forks none", async () => {
    expect((await server.call('acme', 'app', 'put', { key: 'k', value: 1 })).status).toBe(200);
    const sandbox = server.tier('acme').pids()[0]!;
    const spawner = spawnerPid();
    expect(spawner).toBeTypeOf('number');
    expect(spawner).not.toBe(process.pid);
    expect(ppidOf(sandbox)).toBe(spawner);
    expect(ppidOf(sandbox)).not.toBe(process.pid);
    expect(ppidOf(spawner!)).toBe(process.pid);
  });

  it('should fail the process tenant\'s in-flight call `unavailable` when SIGKILLed, keep the shared tenant going, and serve the next call from a new spawner', async () => {
    expect((await server.call('acme', 'app', 'put', { key: 'warm', value: 1 })).status).toBe(200);
    const sandboxBefore = server.tier('acme').pids()[0]!;
    const spawnerBefore = spawnerPid()!;
    const inFlight = server.call('acme', 'app', 'linger', { tag: 'spawner-kill' });
    await until(() => server.logs.some((l) => (l.fields as { tag?: string } | undefined)?.tag === 'spawner-kill'), 20_000, 'the call to start');

    process.kill(spawnerBefore, 'SIGKILL');
    const res = await inFlight;
    expect(res.status, JSON.stringify(res.body)).toBe(503);
    expect(res.body.error.code).toBe('unavailable');
    expect((await server.call('unit-a', 'app', 'put', { key: 'during', value: 1 })).status).toBe(200);
    expect(server.logs.some((l) => l.tenant === 'acme' && l.cause === 'spawner_died' && l.sandbox_pid === sandboxBefore)).toBe(true);
    // Its channel closed with the host's end, so the orphaned sandbox process ends itself.
    await until(() => !existsSync(`/proc/${sandboxBefore}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${sandboxBefore}/status`, 'utf8')), 20_000, 'the orphaned sandbox to exit');

    const after = await server.call('acme', 'app', 'put', { key: 'after', value: 2 });
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(spawnerPid()).not.toBe(spawnerBefore);
    expect(ppidOf(server.tier('acme').pids()[0]!)).toBe(spawnerPid());
    expect((await server.call('unit-a', 'app', 'put', { key: 'after', value: 2 })).status).toBe(200);
  }, 60_000);
});

/** NODE_COMPILE_CACHE in a child's environment as the spawner hands it out now: a shell child prints its environment. */
async function codeCacheNow(): Promise<string | undefined> {
  let onExit!: (e: SpawnedExit) => void;
  const exit = new Promise<SpawnedExit>((resolve) => (onExit = resolve));
  const { channel } = await spawnSandbox('/bin/sh', ['-c', 'env >&2'], onExit);
  channel.destroy();
  return /^NODE_COMPILE_CACHE=(.*)$/m.exec((await exit).stderr)?.[1];
}

/** Every file and directory under `dir`, with its mode and owner. */
function tree(dir: string): { path: string; dir: boolean; mode: number; uid: number }[] {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    out.push({ path, dir: st.isDirectory(), mode: st.mode & 0o7777, uid: st.uid });
    if (st.isDirectory()) out.push(...tree(path));
  }
  return out;
}

describe('the sandbox code cache', () => {
  it("should be primed by the spawner as the host's uid, read-only to everyone, and handed to the sandbox processes started after it", async () => {
    let dir: string | undefined;
    await until(async () => (dir = await codeCacheNow()) !== undefined, 60_000, 'the code cache to be primed');
    expect(dir).toMatch(/\/isohost-sandbox-code-\d+-[^/]+$/);
    const top = statSync(dir!);
    expect(top.uid).toBe(process.getuid!());
    expect(top.mode & 0o7777).toBe(0o755);
    const entries = tree(dir!);
    const files = entries.filter((e) => !e.dir);
    // Every module a sandbox process loads: this file's graph and child-tier.ts's (isolated-vm's, the bridge, the prelude).
    expect(files.length).toBeGreaterThan(20);
    for (const e of entries) {
      expect(e.uid, e.path).toBe(process.getuid!());
      expect(e.mode, e.path).toBe(e.dir ? 0o755 : 0o444);
    }

    // A sandbox process started from now on gets it. The crash of the one in use hands its
    // calls to the standby (started earlier, maybe before the prime) and starts a new
    // standby at once: that one is started now. With two processes, one holding the call's
    // instance (one-shot instances are kept for reuse), `standby` — a ready process holding
    // none — says the new one came up ready: its warm-up launch and call ran with the cache
    // (or it took the call itself).
    const tier = server.tier('acme');
    const before = tier.pids();
    process.kill(before[0]!, 'SIGKILL');
    await until(() => !tier.pids().includes(before[0]!), 20_000, 'the crash to be noticed');
    const res = await server.call('acme', 'app', 'put', { key: 'cached', value: 1 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await until(
      () => {
        const st = tier.status();
        return st.processes.length === 2 && st.processes.some((p) => !before.includes(p)) && st.instances >= 1 && st.standby;
      },
      30_000,
      'a new standby, ready',
    );
    const pid = tier.pids().find((p) => !before.includes(p))!;
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(env).toContain(`NODE_COMPILE_CACHE=${dir}`);
    if (process.getuid!() === 0) {
      // Its own uid: the cache's 0755/0444 leave it reading, never writing.
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      expect(uid).not.toBe(0);
      expect(uid).not.toBe(top.uid);
    }
  }, 90_000);

  it('should be removed when its spawner is SIGKILLed, by the next spawner at its start; a live spawner\'s is kept', async () => {
    // A pid that ran and is gone: a short child of ours, reaped.
    const gone = spawn(process.execPath, ['-e', '0']);
    const gonePid = gone.pid!;
    await new Promise((r) => gone.on('exit', r));
    const left = mkdtempSync(join(tmpdir(), `isohost-sandbox-code-${gonePid}-`));
    writeFileSync(join(left, 'entry'), 'x');
    // One named after a process that runs (this one): not the sweep's to remove.
    const live = mkdtempSync(join(tmpdir(), `isohost-sandbox-code-${process.pid}-`));
    try {
      // No acme call here: killing the spawner ends acme's processes too, and with the
      // tests above that is five crashes in the minute, a crash loop.
      if (spawnerPid() === undefined) await codeCacheNow();
      const before = spawnerPid()!;
      process.kill(before, 'SIGKILL');
      let dir: string | undefined;
      await until(async () => (dir = await codeCacheNow().catch(() => undefined)) !== undefined && spawnerPid() !== before, 60_000, 'a new spawner with its cache');
      expect(existsSync(left)).toBe(false);
      expect(existsSync(live)).toBe(true);
      // The new spawner's own cache is named after it, and the SIGKILLed one's is gone too.
      expect(dir).toMatch(new RegExp(`/isohost-sandbox-code-${spawnerPid()}-[^/]+$`));
      expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`isohost-sandbox-code-${before}-`))).toEqual([]);
    } finally {
      rmSync(left, { recursive: true, force: true });
      rmSync(live, { recursive: true, force: true });
    }
  }, 120_000);
});

/**
 * A child that answers the host's first frame by running `reply`. Its fd 3 is Node's IPC
 * channel (as in sandbox-main.ts): `process.send` writes a frame, `fs.writeSync(3, …)` raw bytes.
 */
async function scriptedChild(reply: string): Promise<{ channel: FrameChannel; messages: unknown[]; violation: Promise<string>; exit: Promise<SpawnedExit>; pid: number }> {
  let onExit!: (e: SpawnedExit) => void;
  const exit = new Promise<SpawnedExit>((resolve) => (onExit = resolve));
  const script = `const w = (b) => require('node:fs').writeSync(3, b); process.on('disconnect', () => process.exit(0)); process.once('message', (m) => { ${reply} });`;
  const { pid, channel: socket } = await spawnSandbox(process.execPath, ['-e', script], onExit);
  const messages: unknown[] = [];
  let onViolation!: (what: string) => void;
  const violation = new Promise<string>((resolve) => (onViolation = resolve));
  const channel = new FrameChannel(socket, MAX_CHILD_FRAME_BYTES, { message: (m) => messages.push(m), violation: onViolation, close: () => {} });
  return { channel, messages, violation, exit, pid };
}

describe('the host ↔ sandbox channel', () => {
  it("should carry ArrayBuffers and typed arrays intact through the child's Node IPC, both ways", async () => {
    // The child's Node IPC reads the host's frame and sends the value back as its own frame.
    const child = await scriptedChild('process.send(m);');
    const bytes = new Uint8Array([0, 1, 2, 250, 255]).buffer;
    child.channel.send({ t: 'reply', id: 7, ok: true, json: '"x"', bytes, view: new Uint16Array([1, 65535]) });
    await until(() => child.messages.length === 1, 20_000, 'the echo');
    const echoed = child.messages[0] as { id: number; bytes: unknown; view: unknown };
    expect(echoed.id).toBe(7);
    expect(echoed.bytes).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(echoed.bytes as ArrayBuffer)]).toEqual([0, 1, 2, 250, 255]);
    expect(echoed.view).toBeInstanceOf(Uint16Array);
    expect([...(echoed.view as Uint16Array)]).toEqual([1, 65535]);
    child.channel.close();
    expect((await child.exit).code).toBe(0);
  });

  it('should count a length prefix over the bound as a violation and close the channel, allocating nothing for it', async () => {
    const child = await scriptedChild('const h = Buffer.alloc(4); h.writeUInt32BE(0xffffffff); w(h);');
    child.channel.send({ t: 'ping', id: 1 });
    expect(await child.violation).toMatch(/frame of 4294967295 bytes/);
    expect(child.channel.closed).toBe(true);
    expect(child.messages).toEqual([]);
    // The child sees its channel close and exits.
    expect((await child.exit).code).toBe(0);
  });

  it('should count a frame that does not deserialize as a violation', async () => {
    const child = await scriptedChild('const h = Buffer.alloc(8); h.writeUInt32BE(4); h.writeUInt32BE(0xdeadbeef, 4); w(h);');
    child.channel.send({ t: 'ping', id: 1 });
    expect(await child.violation).toMatch(/does not deserialize/);
    killSandbox(child.pid);
    await child.exit;
  });
});
