/**
 * Globals V8 defines that isohost does not offer to mini-apps. They are removed from
 * every context at `attach`, before any mini-app code exists: removing them at snapshot
 * time is not enough, V8 installs `WebAssembly` again in each context it makes from
 * the snapshot (checked: `typeof WebAssembly` was "object" in a launched instance).
 *
 * `WebAssembly`: a Wasm memory lives outside the V8 heap and outside isolated-vm's
 * ArrayBuffer allocator, so `memory_mb` does not count it. Measured (isolated-vm 7.0.1,
 * Node 24, memoryLimit 32 MB): allocating and touching 64 MiB `WebAssembly.Memory`
 * objects in a loop grew the host's RSS by ~190 MB in 3 s before the timeout ended it,
 * while an equal ArrayBuffer loop was refused at once ("Array buffer allocation
 * failed"); a `memory.grow` loop ran 6 s past its 3 s timeout. Until it can be counted
 * it is not offered (runtime-api/fc.d.ts says so; THREATS F44).
 */
export const WITHHELD_GLOBALS = ['WebAssembly'] as const;

/** Deletes the withheld globals from `global` (they are configurable own properties of it). */
export function withholdGlobals(global: object): void {
  // An index loop, not for-of: the prelude never runs an iterator a mini-app could replace (saved-intrinsics lint).
  for (let i = 0; i < WITHHELD_GLOBALS.length; i++) delete (global as Record<string, unknown>)[WITHHELD_GLOBALS[i]!];
}
