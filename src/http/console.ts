/**
 * The operator's console (issue 14): static files shipped in the package (`console/`),
 * served at `/console/` on the ops listener when `deployment.ops_listen` is set, else on the
 * API listener, beside the admin API it calls (routes/admin.ts). Plain HTML, CSS and ES
 * modules: no build step, no framework, nothing fetched from anywhere else. The files are
 * read once when the server is built; only those names are served.
 *
 * Every answer carries a Content-Security-Policy of `default-src 'self'` (no inline script or
 * style, no other origin, no framing): the console shows partners' bundle sources, and
 * escaping them is backed by a policy under which nothing injected could run or call out.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { IsohostError } from '../errors.ts';
import { errorResponses } from './schemas.ts';

/** Where the console's files live in the package. */
export const CONSOLE_DIR = new URL('../../console/', import.meta.url);

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
const ASSET_NAME = /^[a-z0-9-]+\.(html|js|css|svg)$/;

/** The console's CSP: its own origin only; `data:` images for nothing but the favicon. */
export const CONSOLE_CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  type: string;
  body: Buffer;
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(CONSOLE_DIR)) {
    const m = ASSET_NAME.exec(name);
    if (m === null) continue;
    assets.set(name, { type: TYPES[m[1]!]!, body: await readFile(new URL(name, CONSOLE_DIR)) });
  }
  if (!assets.has('index.html')) throw new IsohostError('internal', 'the console files are missing from the package (console/index.html)');
  return assets;
}

/**
 * @example
 * await app.register(consoleRoutes()); // GET /console/ → index.html, /console/app.js → app.js
 */
export function consoleRoutes() {
  return async (app: FastifyInstance) => {
    const assets = await loadAssets();
    app.addHook('onSend', async (_req, reply) => {
      void reply
        .header('content-security-policy', CONSOLE_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('x-frame-options', 'DENY')
        .header('cache-control', 'no-cache');
    });
    const send = (name: string) => {
      const asset = assets.get(name);
      if (asset === undefined) throw new IsohostError('not_found', 'no such console file');
      return asset;
    };
    app.get('/console', { schema: { operationId: 'getConsoleRedirect', summary: 'The operator console (redirects to /console/)', tags: ['console'], response: { 302: { description: 'to /console/', type: 'null' } } } }, async (_req, reply) =>
      reply.redirect('/console/', 302),
    );
    app.get<{ Params: { file: string } }>(
      '/console/:file',
      {
        schema: {
          operationId: 'getConsole',
          summary: 'The operator console (`/console/`: sign in with an operator-realm token, see `isohost console`) and its files',
          tags: ['console'],
          params: { type: 'object', required: ['file'], properties: { file: { type: 'string', maxLength: 64 } } },
          response: { 200: { description: 'the page (an empty file name) or one of its files', content: { 'text/html': { schema: { type: 'string' } }, 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } }, ...errorResponses(['not_found']) },
        },
      },
      async (req, reply) => {
        // `/console/` matches with an empty file name: the page itself.
        const a = send(req.params.file === '' ? 'index.html' : req.params.file);
        return reply.type(a.type).send(a.body);
      },
    );
  };
}
