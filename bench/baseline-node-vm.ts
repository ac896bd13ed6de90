/**
 * node:vm — what a user would pick for speed when isolation does not matter: same heap,
 * same thread, no security boundary (the Node docs say so: "The node:vm module is not a
 * security mechanism"). For the README's comparison table (CONTRACT §6).
 */
import vm from 'node:vm';
import { SMALL_ARG } from './baseline-ivm.ts';
import { type BenchContext, type Result, now, sample, since, summarize } from './stats.ts';

/**
 * The tiny program each context runs: defines the method and a JSON-in/JSON-out entry
 * point. JSON rather than passing the host object because an object from the host realm
 * would hand the guest the host's prototypes; parsing inside the context gives it its
 * own realm's objects, the nearest node:vm gets to isolated-vm's `copy: true`.
 */
const PROGRAM = new vm.Script(`
  const echo = (a) => a;
  globalThis.__call = (json) => JSON.stringify(echo(JSON.parse(json)));
`);

type Entry = (json: string) => string;

/** Result names this file produces (the runner's `--only` selects by these). */
export const names = ['baseline.node-vm.launch', 'baseline.node-vm.call'];

export async function bench(ctx: BenchContext): Promise<Result[]> {
  const results: Result[] = [];
  if (ctx.wants('baseline.node-vm.launch')) results.push(await launch(ctx));
  if (ctx.wants('baseline.node-vm.call')) results.push(await call(ctx));
  return results;
}

/**
 * `createContext` + running the tiny program: ready to call. The Script is compiled once,
 * outside the loop, as any host would cache compiled code; each launch only runs it.
 */
async function launch(ctx: BenchContext): Promise<Result> {
  const samples = await sample(ctx.n(20, 5), ctx.n(500, 50), () => {
    const t0 = now();
    const context = vm.createContext({});
    PROGRAM.runInContext(context);
    return since(t0);
    // The context is dropped here; V8 collects it. There is no explicit dispose.
  });
  return summarize('baseline.node-vm.launch', 'ms', samples);
}

/** One synchronous call, JSON in and out (see PROGRAM for why JSON). */
async function call(ctx: BenchContext): Promise<Result> {
  const context = vm.createContext({});
  PROGRAM.runInContext(context);
  const entry = context.__call as Entry;
  if (entry(JSON.stringify(SMALL_ARG)) !== JSON.stringify(SMALL_ARG)) throw new Error('node:vm echo returned a different value');

  const samples = await sample(ctx.n(1000, 100), ctx.n(10000, 1000), () => {
    const t0 = now();
    JSON.parse(entry(JSON.stringify(SMALL_ARG)));
    return since(t0);
  });
  return summarize('baseline.node-vm.call', 'us', samples);
}
