/**
 * Lint (issue 11, THREATS A2): code in the guest prelude that can run after mini-app code
 * has started calls built-in prototype methods only through the functions saved at prelude
 * start (runtime-api/prelude/intrinsics.ts, web/saved.ts). A mini-app may replace any
 * method on any built-in prototype; a prelude that then calls `s.slice(…)`, spreads an
 * array, destructures one, or loops with for-of (both run the array iterator) would run
 * the mini-app's replacement instead.
 *
 * The sources are tokenized (comments, strings, templates and regex literals skipped) and
 * every token inside a function or class body (brace depth > 0; top-level statements run
 * at snapshot time, before any mini-app exists) is checked for:
 * - `.name(` where `name` is a method of a built-in prototype (receivers that are
 *   capitalised globals, `Object.keys(` and the like, are statics, not prototype methods;
 *   `this.name(` calls the prelude's own class methods, as the web APIs it implements do);
 * - `.size`, `.byteLength`, `.byteOffset`, `.buffer`: prototype getters of Map/Set and
 *   of buffers and views;
 * - array or call spread (`[...x]`, `f(...x)`), array destructuring (`const [a] = x`)
 *   and `for (… of …)`. Object spread `{ ...x }` and rest parameters run no iterator.
 * A line may opt out with a trailing `// saved-intrinsics: <why>` comment.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const PRELUDE = new URL('../../runtime-api/prelude/', import.meta.url);
/** The two files that do the saving. */
const SAVERS = new Set(['intrinsics.ts', 'web/saved.ts']);

const BUILTIN_PROTOTYPES = [
  String, Array, Map, Set, WeakMap, WeakSet, Promise, RegExp, Object, Function, Number, Date, ArrayBuffer,
  Object.getPrototypeOf(Uint8Array), DataView, Symbol, Error, Boolean, BigInt,
].map((c) => c.prototype as object);
const METHODS = new Set(
  BUILTIN_PROTOTYPES.flatMap((p) => Object.getOwnPropertyNames(p).filter((n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(p, n)!.value === 'function')),
);
const GETTERS = new Set(['size', 'byteLength', 'byteOffset', 'buffer']);
const ALLOW = /\/\/ saved-intrinsics: \S/;

interface Token {
  kind: 'id' | 'punct' | 'literal';
  text: string;
  line: number;
}

const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'instanceof', 'yield', 'await']);

/** A tokenizer good enough for our own TypeScript: skips comments, strings, templates and regex literals. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const push = (kind: Token['kind'], text: string) => out.push({ kind, text, line });
  const skipTo = (end: number) => {
    for (let k = i; k < end; k++) if (src[k] === '\n') line++;
    i = end;
  };
  while (i < src.length) {
    const c = src[i]!;
    const prev = out[out.length - 1];
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (src.startsWith('//', i)) skipTo(src.indexOf('\n', i) === -1 ? src.length : src.indexOf('\n', i));
    else if (src.startsWith('/*', i)) skipTo(src.indexOf('*/', i) + 2);
    else if (c === '"' || c === "'") {
      let j = i + 1;
      while (src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      push('literal', '');
      skipTo(j + 1);
    } else if (c === '`') {
      // The template's ${…} parts are code too, but ours hold only names and saved calls.
      let j = i + 1;
      let depth = 0;
      while (j < src.length && !(depth === 0 && src[j] === '`')) {
        if (src[j] === '\\') j++;
        else if (src.startsWith('${', j)) depth++;
        else if (depth > 0 && src[j] === '}') depth--;
        j++;
      }
      push('literal', '');
      skipTo(j + 1);
    } else if (c === '/' && (prev === undefined || (prev.kind === 'punct' && !')]}'.includes(prev.text)) || (prev.kind === 'id' && REGEX_AFTER_WORD.has(prev.text)))) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && (inClass || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      j++;
      while (/[a-z]/.test(src[j] ?? '')) j++;
      push('literal', '');
      skipTo(j);
    } else {
      const m = /^(#?[A-Za-z_$][\w$]*|\d[\w.]*|\.\.\.|\?\.|=>|[^\s])/.exec(src.slice(i, i + 80))!;
      push(/^#?[A-Za-z_$]/.test(m[0]) ? 'id' : 'punct', m[0]);
      i += m[0].length;
    }
  }
  return out;
}

/** Index of the bracket closing the one opened at `open`. */
function closing(tokens: Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    if ('([{'.includes(tokens[k]!.text)) depth++;
    else if (')]}'.includes(tokens[k]!.text) && --depth === 0) return k;
  }
  return tokens.length;
}

/** `line: what` for every call of a built-in prototype member after start-up in `src`. */
export function findUnsavedCalls(src: string): string[] {
  const lines = src.split('\n');
  const tokens = tokenize(src);
  const found: string[] = [];
  const stack: number[] = []; // indexes of open brackets
  let braces = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    const prev = tokens[k - 1];
    const next = tokens[k + 1];
    if ('([{'.includes(t.text) && t.kind === 'punct') {
      stack.push(k);
      if (t.text === '{') braces++;
    } else if (')]}'.includes(t.text) && t.kind === 'punct') {
      stack.pop();
      if (t.text === '}') braces--;
    }
    if (braces === 0 || ALLOW.test(lines[t.line - 1]!)) continue;
    const report = (what: string) => found.push(`${t.line}: ${what}`);
    if ((t.text === '.' || t.text === '?.') && next?.kind === 'id') {
      const name = next.text;
      const after = tokens[k + 2]?.text;
      const isStatic = prev?.kind === 'id' && /^[A-Z]/.test(prev.text);
      if (after === '(' && METHODS.has(name) && !isStatic && prev?.text !== 'this') report(`.${name}(`);
      else if (after !== '(' && after !== '=' && GETTERS.has(name)) report(`.${name}`);
    }
    if (t.text === '...') {
      const open = tokens[stack[stack.length - 1] ?? -1];
      if (open?.text === '[') report('array spread or rest');
      else if (open?.text === '(') {
        const after = tokens[closing(tokens, stack[stack.length - 1]!) + 1]?.text;
        if (after !== '=>' && after !== '{' && after !== ':') report('call spread');
      }
    }
    if (t.text === '[' && prev !== undefined && ['const', 'let', 'var'].includes(prev.text)) report('array destructuring');
    if (t.text === 'of' && t.kind === 'id' && prev !== undefined && (prev.kind === 'id' || prev.text === ']' || prev.text === '}')) report('for-of');
  }
  return found;
}

function preludeFiles(): string[] {
  const dir = (sub: string) =>
    readdirSync(new URL(sub, PRELUDE))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => sub + f);
  return [...dir(''), ...dir('web/')].filter((f) => !SAVERS.has(f));
}

describe('saved intrinsics lint', () => {
  it('should find each kind of unsaved call in a sample (the lint can fail)', () => {
    const sample = [
      'const top = "a,b".split(",");', // top level: snapshot time, allowed
      'export function f(s: string, m: Map<string, number>, xs: number[]) {',
      '  const a = s.slice(1);',
      '  const n = m.size;',
      '  const b = [...xs];',
      '  g(...xs);',
      '  const [first] = xs;',
      '  for (const x of xs) g(x);',
      '  const o = { ...m };',
      '  const h = (...rest: number[]) => rest;',
      '  const k = Object.keys(o);',
      '  const re = /a.b(c)/g;',
      '  const t = `x${s}y`;',
      '  const ok = s.slice(0); // saved-intrinsics: test of the opt-out',
      '}',
    ].join('\n');
    expect(findUnsavedCalls(sample)).toEqual(['3: .slice(', '4: .size', '5: array spread or rest', '6: call spread', '7: array destructuring', '8: for-of']);
  });

  it('should find no built-in prototype call after start-up in the prelude sources', () => {
    const files = preludeFiles();
    expect(files.length).toBeGreaterThan(10);
    const problems = files.flatMap((f) => findUnsavedCalls(readFileSync(new URL(f, PRELUDE), 'utf8')).map((p) => `${f}:${p}`));
    expect(problems).toEqual([]);
  });
});
