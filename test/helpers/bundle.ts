/**
 * Turns real functions into a mini-app bundle, so guest code in tests is code the
 * editor checks (STYLE habit 7). Each function becomes `export const name = <source>`;
 * the functions must not close over test-file variables (they run in the isolate).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
export type GuestFn = (args: any) => unknown;

export function bundleOf(methods: Record<string, GuestFn>, prologue = ''): string {
  let out = prologue ? prologue + '\n' : '';
  for (const [name, fn] of Object.entries(methods)) out += `export const ${name} = ${fn.toString()};\n`;
  return out;
}

/** `fc` as the guest sees it, typed loosely for test bodies. */
export declare const fc: any;
