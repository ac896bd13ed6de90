/**
 * Turns real functions into a mini-app bundle, so guest code in tests is code the
 * editor checks (STYLE habit 7). Each function becomes `export const name = <source>`;
 * the functions must not close over test-file variables (they run in the isolate).
 */
export type GuestFn = (args: any) => unknown;

function asExpression(src: string): string {
  try {
    new Function(`return (${src})`);
    return src;
  } catch {
    // method shorthand (`name() {}` / `async name() {}`) is not an expression
    return src.replace(/^(async\s+)?/, (m) => `${m}function `);
  }
}

export function bundleOf(methods: Record<string, GuestFn>, prologue = ''): string {
  let out = prologue ? prologue + '\n' : '';
  for (const [name, fn] of Object.entries(methods)) out += `export const ${name} = ${asExpression(fn.toString())};\n`;
  return out;
}

// Test files declare the isolate's global themselves: `declare const fc: any;` (an
// import would be rewritten by vitest into a module reference the isolate lacks).
