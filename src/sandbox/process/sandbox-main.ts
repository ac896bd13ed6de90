/**
 * Entry of a sandbox process (the process tier, issue 10). Started for the host's
 * SandboxProcess (supervised-process.ts) by the spawner (spawner-main.ts), with a
 * socketpair on fd 3 whose other end the host holds: Node's IPC channel here, the same
 * frames on the host's side (frame-channel.ts); holds ONE tenant's
 * isolates, run by the in-process launch steps inside it (child-tier.ts), so `bridge.ts`
 * stays the only file that imports isolated-vm.
 *
 * It holds no store, no key and no credential: every platform op of a guest call
 * (storage, fetch, log, timers) goes to the host as an `op` message with the call's id,
 * and the host serves it with the bindings of that instance, closed over the tenant.
 *
 * Order of start-up, on purpose: first drop privileges (when started as root: no
 * supplementary groups, then the tenant's gid and uid — every thread of the process,
 * glibc's setxid broadcast), then load isolated-vm and the prelude, then, once the host's
 * first frame has come (until then the spawner may still hold the other end of fd 3,
 * and must not read what we write), say `ready`.
 * No guest code runs before the privileges are gone.
 *
 * argv: `--uid N --gid N` (optional; only when the host runs as root),
 * `--memory-mb N` (the tenant's isolate heap limit), `--warm N` (blank isolates kept);
 * or `--prime` alone (see prime()).
 */
import { flushCompileCache } from 'node:module';
import { parseArgs } from 'node:util';
import { IsohostError } from '../../errors.ts';
import type { Conversion } from '../script-form.ts';
import type { CallTag, SandboxTier, TierInstance } from '../tier.ts';
import { parseHostMessage, type ChildMessage, type HostMessage, type WireError } from './protocol.ts';
import { heldBytes, SourceCache } from './source-cache.ts';
import { WARM_UP_CONVERTED, WARM_UP_SOURCE } from './warm-up.ts';

/** Exit codes the host reads as "could not start" rather than a crash of guest code. */
export const EXIT_BAD_ARGS = 64;
export const EXIT_PRIVILEGES = 77;

const { values } = parseArgs({
  options: { uid: { type: 'string' }, gid: { type: 'string' }, 'memory-mb': { type: 'string' }, warm: { type: 'string' }, prime: { type: 'boolean' } },
});
if (values.prime === true) await prime();
const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const uid = num(values.uid);
const gid = num(values.gid);
const memoryMb = num(values['memory-mb']) ?? 64;
const warm = num(values.warm) ?? 1;
if (![memoryMb, warm, uid ?? 0, gid ?? 0].every((n) => Number.isSafeInteger(n) && n >= 0)) {
  process.exit(EXIT_BAD_ARGS);
}

dropPrivileges();
process.umask(0o077);

/** Frames that came before we were ready to handle them (the host's first ping). */
const early: unknown[] = [];
let handle: ((raw: unknown) => void) | undefined;
let hostSpoke!: () => void;
const firstFrame = new Promise<void>((resolve) => (hostSpoke = resolve));
// fd 3 is Node's own IPC channel here (the spawner sets NODE_CHANNEL_FD=3, advanced
// serialisation): Node reads and writes it on the handle, without a stream in between.
// The host's end speaks the same frames (frame-channel.ts). Host frames are trusted.
if (typeof process.send !== 'function') process.exit(EXIT_BAD_ARGS);
process.on('message', (raw: unknown) => {
  hostSpoke();
  if (handle === undefined) early.push(raw);
  else handle(raw);
});
// The host (or its end of the channel) is gone: nothing here is of use to anyone.
process.on('disconnect', () => process.exit(0));
const send = (m: ChildMessage): void => {
  if (process.connected) process.send!(m);
};

const tier = await openTier(memoryMb, warm);
await warmUp(tier);
const instances = new Map<number, TierInstance>();
/** A bundle as the host sent it: its source, and its conversion to a script when the host made it. */
type Held = { source: string; converted?: Conversion };
/** Bundles launched here, so the host need not send them again (source-cache.ts). */
const sources = new SourceCache<Held>();
const opReplies = new Map<number, { resolve: (r: { json: string; bytes?: ArrayBuffer }) => void; reject: (e: unknown) => void }>();
let nextOp = 1;

/** The child side of a call's tag: remembers the host's call id and the call's wall end. */
class ChildTag implements CallTag {
  readonly call: number;
  wallEnd = 0;
  constructor(call: number) {
    this.call = call;
  }
  started(wallEnd: number): void {
    this.wallEnd = wallEnd;
  }
}

function wire(err: unknown): WireError {
  return err instanceof IsohostError ? { code: err.code, message: err.message } : { code: 'internal', message: 'internal error' };
}

/** Sends one platform op of the running call to the host and waits for its reply. */
function forward(op: string, payload: unknown, bytes: ArrayBuffer | undefined, tag: CallTag | undefined): Promise<{ json: string; bytes?: ArrayBuffer }> {
  if (!(tag instanceof ChildTag)) return Promise.reject(new IsohostError('invalid_request', 'platform calls are only served while a call is running'));
  const id = nextOp++;
  return new Promise((resolve, reject) => {
    opReplies.set(id, { resolve, reject });
    const m: ChildMessage = { t: 'op', id, call: tag.call, wallEnd: tag.wallEnd, op, payload: JSON.stringify(payload) };
    if (bytes !== undefined) m.bytes = bytes;
    send(m);
  });
}

function onMessage(raw: unknown): void {
  const m: HostMessage | undefined = parseHostMessage(raw);
  if (m === undefined) return;
  switch (m.t) {
    case 'launch': {
      const { source, converted, ...rest } = m.spec;
      let held: Held | undefined;
      if (source === undefined) held = sources.get(rest.sha256);
      else sources.put(rest.sha256, (held = converted === undefined ? { source } : { source, converted }), heldBytes(source, converted));
      if (held === undefined) return send({ t: 'need_source', id: m.id });
      tier.launch({ ...rest, ...held }, forward).then(
        (inst) => {
          instances.set(m.id, inst);
          inst.onEnded(() => instances.delete(m.id));
          send({ t: 'launched', id: m.id, methods: [...inst.methods], warm: inst.warm === true });
        },
        (err) => send({ t: 'launch_failed', id: m.id, error: wire(err) }),
      );
      return;
    }
    case 'call': {
      const inst = instances.get(m.instance);
      if (inst === undefined) return send({ t: 'call_failed', id: m.id, error: { code: 'not_found', message: 'the instance has ended' }, ended: true });
      inst.call(m.method, m.args, { cpuMs: m.cpuMs, wallMs: m.wallMs }, new ChildTag(m.id)).then(
        (json) => send({ t: 'result', id: m.id, json }),
        (err) => send({ t: 'call_failed', id: m.id, error: wire(err), ended: inst.ended }),
      );
      return;
    }
    case 'dispose':
      instances.get(m.instance)?.dispose();
      instances.delete(m.instance);
      return;
    case 'reply': {
      const pending = opReplies.get(m.id);
      if (pending === undefined) return;
      opReplies.delete(m.id);
      if (m.ok) pending.resolve(m.bytes === undefined ? { json: m.json } : { json: m.json, bytes: m.bytes });
      else pending.reject(new IsohostError(m.error.code, m.error.message));
      return;
    }
    case 'ping':
      return send({ t: 'pong', id: m.id });
  }
}

await firstFrame;
send({ t: 'ready', uid: process.getuid!(), gid: process.getgid!() });
handle = onMessage;
for (const raw of early.splice(0)) onMessage(raw);

/**
 * Gives up root for good: groups, gid, uid, in that order (after setuid the others are
 * no longer allowed). Verified, not assumed: if uid 0 can be taken back, we exit.
 */
function dropPrivileges(): void {
  if (uid === undefined || gid === undefined) return;
  try {
    process.setgroups!([]);
    process.setgid!(gid);
    process.setuid!(uid);
  } catch {
    process.exit(EXIT_PRIVILEGES);
  }
  let regained = false;
  try {
    process.setuid!(0);
    regained = true;
  } catch {
    // expected: EPERM
  }
  if (regained || process.getuid!() !== uid || process.geteuid!() !== uid || process.getgid!() !== gid || process.getgroups!().some((g) => g !== gid)) {
    process.exit(EXIT_PRIVILEGES);
  }
}

/**
 * One launch and call of our own two-line bundle before `ready`, so a tenant's first
 * launch here does not pay for what a process does once: the first compile, the launch
 * path's first run (measured when it also started esbuild's service, before stop 24:
 * ~350 ms of a first launch on a busy 2-core box, ~30 ms after). This is what makes the
 * standby take over fast.
 */
async function warmUp(t: SandboxTier): Promise<void> {
  const refuse = () => Promise.reject(new IsohostError('invalid_request', 'no platform calls while warming up'));
  try {
    const inst = await t.launch({ source: WARM_UP_SOURCE, converted: WARM_UP_CONVERTED, sha256: 'warm-up'.padEnd(64, '0'), metaJson: '{"app":{"id":"warm-up","version":"0"},"user":null}', label: 'sandbox warm-up', memoryMb, cpuMs: 5000, wallMs: 30_000 }, refuse);
    await inst.call('warm', '1', { cpuMs: 5000, wallMs: 30_000 });
    inst.dispose();
  } catch {
    // a warm-up that fails only leaves the first real launch slower
  }
}

/**
 * `--prime`: run by the spawner, as the host's uid, with NODE_COMPILE_CACHE set to the
 * sandbox code cache it then makes read-only (spawner-main.ts). Loads what a sandbox
 * process loads — this file's imports and, as a process does after its privilege drop,
 * child-tier.ts and everything it brings — writes the cache and exits. Nothing else of a
 * sandbox runs: no channel, no isolate, no privilege change.
 */
async function prime(): Promise<never> {
  await import('./child-tier.ts');
  flushCompileCache();
  process.exit(0);
}

/** Loaded only now, after the privilege drop: isolated-vm and the prelude snapshot come with it. */
async function openTier(memory: number, warmCount: number): Promise<SandboxTier> {
  const { ChildTier } = await import('./child-tier.ts');
  return new ChildTier(memory, warmCount);
}
