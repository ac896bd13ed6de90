/**
 * `runtime-api/fc.d.ts` type-checks alone (issue 12): a mini-app project with only that
 * file, `lib: ["es2023"]`, `types: []`, `strict` and no `skipLibCheck` compiles an app
 * that touches every member of `fc` and every web global the isolate offers; and the
 * types are real, not `any`: misuses fail, each on its own line.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const TSCONFIG = {
  compilerOptions: {
    target: 'es2023', lib: ['es2023'], types: [], module: 'esnext', moduleResolution: 'bundler',
    strict: true, noEmit: true, isolatedModules: true, exactOptionalPropertyTypes: true,
  },
  include: ['src', 'types'],
};

const EVERY_MEMBER = `
type Note = { text: string; at: string };

export async function everything(args: { text: string }): Promise<Json> {
  const app: string = fc.app.id + fc.app.version;
  const user = fc.session.user;
  const sub: string | null = user === null ? null : user.sub;
  const claims: Json | undefined = user?.claims['email'];
  const note: Note = { text: args.text, at: new Date().toISOString() };
  await fc.storage.set('note:1', note);
  const back: Json = await fc.storage.get('note:1');
  await fc.storage.delete('note:0');
  const page = await fc.storage.list({ prefix: 'note:', limit: 10, cursor: null });
  const keys: string[] = page.entries.map((e) => e.key);
  const next: string | null = page.cursor;
  await fc.storage.batch([{ op: 'set', key: 'a', value: [1, 'two', null] }, { op: 'delete', key: 'b' }]);
  fc.log.debug('d'); fc.log.info('i', { n: 1 }); fc.log.warn('w'); fc.log.error('e', { keys });
  console.log('x', 1); console.info('i'); console.debug('d'); console.warn('w'); console.error(new Error('e'));

  const headers = new Headers({ accept: 'application/json' });
  headers.append('x-a', '1'); headers.set('x-b', '2'); headers.delete('x-b');
  const h: string | null = headers.get('x-a');
  const has: boolean = headers.has('x-a');
  const cookies: string[] = headers.getSetCookie();
  headers.forEach((value, name) => fc.log.debug(name + value));
  for (const [name, value] of headers) fc.log.debug(name + value);
  const names: string[] = [...headers.keys(), ...headers.values()];
  const pairs: [string, string][] = [...headers.entries()];

  const url = new URL('/quote?sym=ACME', 'https://api.acme-partner.com');
  url.searchParams.append('x', '1');
  url.hash = 'h'; url.pathname = '/q'; url.search = '?a=1'; url.port = '443'; url.protocol = 'https:';
  url.username = ''; url.password = ''; url.host = 'api.acme-partner.com'; url.hostname = 'api.acme-partner.com'; url.href = url.toString();
  const parts: string = url.origin + url.toJSON();
  const ok1: boolean = URL.canParse('https://a.example');
  const maybe: URL | null = URL.parse('nope');
  const params = new URLSearchParams([['a', '1']]);
  const p2 = new URLSearchParams({ b: '2' });
  const p3 = new URLSearchParams(p2);
  params.set('c', '3'); params.delete('a', '1'); params.sort();
  const size: number = params.size + p3.size;
  const all: string[] = params.getAll('c');
  const got: string | null = params.get('c');
  const hp: boolean = params.has('c', '3');
  params.forEach((v, k) => fc.log.debug(k + v));
  for (const [k, v] of params.entries()) fc.log.debug(k + v);

  const req = new Request(url, { method: 'POST', headers: [['content-type', 'text/plain']], body: 'hi', redirect: 'manual' });
  const copy: Request = req.clone();
  const meta: string = req.method + req.url + req.redirect + req.cache + req.credentials + req.destination + req.duplex +
    req.integrity + req.mode + req.referrer + req.referrerPolicy + String(req.keepalive) + String(copy.bodyUsed);
  const res: Response = await fc.fetch(req);
  const res2: Response = await fetch('https://api.acme-partner.com/x', { body: new Uint8Array([1]), method: 'PUT' });
  const res3: Response = await fc.fetch(new URL('https://api.acme-partner.com/'), { headers: headers });
  const status: number = res.status;
  const fine: boolean = res.ok && res.redirected;
  const rtype: ResponseType = res.type;
  const text: string = res.statusText + res.url + (res.headers.get('content-type') ?? '');
  const body: ReadableStream | null = res.body;
  if (body !== null) {
    const reader = body.getReader();
    const chunk = await reader.read();
    if (!chunk.done) fc.log.debug(String(chunk.value.byteLength));
    reader.releaseLock();
    await reader.closed.catch(() => undefined);
    await reader.cancel();
    for await (const c of body) fc.log.debug(String(c.length));
    for await (const c of body.values()) fc.log.debug(String(c.length));
    await body.cancel('done');
    const locked: boolean = body.locked;
  }
  const buf: ArrayBuffer = await res2.clone().arrayBuffer();
  const bytes: Uint8Array = await res2.bytes();
  const data: unknown = await res3.json();
  const t: string = await new Response('x').text();
  new Response(null, { status: 204, statusText: 'No Content', headers: { a: 'b' } });
  Response.json({ ok: true }, { status: 201 });
  Response.redirect('https://a.example/', 301);
  Response.error();

  const enc = new TextEncoder();
  const encoded: Uint8Array = enc.encode('héllo');
  const into: { read: number; written: number } = enc.encodeInto('a', new Uint8Array(4));
  const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const decoded: string = dec.decode(encoded, { stream: false }) + dec.encoding + enc.encoding + String(dec.fatal && dec.ignoreBOM);
  const b64: string = btoa('abc');
  const raw: string = atob(b64);
  const random: Uint32Array = crypto.getRandomValues(new Uint32Array(4));
  const id: string = crypto.randomUUID();
  const cloned: { a: Map<string, number> } = structuredClone({ a: new Map([['x', 1]]) });
  const timer: number = setTimeout((n: number) => fc.log.info(String(n)), 10, 1);
  clearTimeout(timer);
  queueMicrotask(() => undefined);
  try {
    structuredClone(() => 1);
  } catch (e) {
    if (e instanceof DOMException) fc.log.warn(e.name + e.message + e.code);
  }
  void [app, sub, claims, back, next, h, has, cookies, names, pairs, parts, ok1, maybe, size, all, got, hp, meta, status,
    fine, rtype, text, buf, bytes, data, t, into, decoded, raw, random, id, cloned];
  return { app, note };
}
`;

/** Each line must fail: a wrong type, or a global the isolate does not have. */
const MISUSES = [
  `export const a: number = await fc.storage.get('k');`,
  `export const b: string = (await fetch('https://x.example')).status;`,
  `export const c = document.title;`,
  `export const d = new Blob(['x']);`,
  `await fc.storage.set('k', new Map());`,
  `export const e = process.env;`,
  `fc.log.info(42);`,
  `await fc.storage.list({ limit: '10' });`,
  `export const f = WebAssembly.validate(new Uint8Array(0));`,
  `export const g = require('node:fs');`,
  `export const h = Buffer.from('x');`,
];

function tsc(dir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules/.bin/tsc'), ['--noEmit', '-p', dir, '--pretty', 'false'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function project(dir: string, app: string): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await mkdir(join(dir, 'types'), { recursive: true });
  await copyFile(join(ROOT, 'runtime-api/fc.d.ts'), join(dir, 'types/fc.d.ts'));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  // `Json` is exported by fc.d.ts, not global: the app imports it as a type, as an author would.
  await writeFile(join(dir, 'src/app.ts'), `import type { Json } from '../types/fc.d.ts';\n${app}`);
}

describe('runtime-api/fc.d.ts alone (lib es2023, types [], strict, no skipLibCheck)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('isohost-fcdts-');
  });
  afterAll(async () => tmp.dispose());

  it('should type-check an app that uses every member of fc and every web global', async () => {
    const dir = join(tmp.path, 'good');
    await project(dir, EVERY_MEMBER);
    const r = await tsc(dir);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  }, 120_000);

  it('should fail each misuse on its own line (the types are not any)', async () => {
    const dir = join(tmp.path, 'bad');
    await project(dir, `${MISUSES.join('\n')}\nexport {};\n`);
    const r = await tsc(dir);
    expect(r.code).not.toBe(0);
    // Line 1 is the import; misuse i is on line i + 2.
    const failing = new Set([...r.out.matchAll(/src\/app\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])));
    for (let i = 0; i < MISUSES.length; i++) expect(failing.has(i + 2), `${MISUSES[i]} should fail:\n${r.out}`).toBe(true);
    expect(r.out).not.toContain('fc.d.ts(');
  }, 120_000);
});
