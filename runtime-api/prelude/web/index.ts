/**
 * The web-standard globals of the in-isolate prelude (CONTRACT §3): what a mini-app
 * author expects from Workers or Deno, minus streams, Blob, FormData, AbortController
 * and crypto.subtle. Each is defined like in browsers: non-enumerable, writable,
 * configurable. `fetch` is exported for the prelude to install as `fc.fetch` and as
 * the global `fetch`.
 */
import { ObjectDefineProperty } from '../intrinsics.ts';
import { atob, btoa } from './base64.ts';
import { createCrypto } from './crypto.ts';
import { DOMException } from './dom-exception.ts';
import { Headers } from './headers.ts';
import { Request } from './request.ts';
import { Response } from './response.ts';
import { dataDesc } from './saved.ts';
import { structuredClone } from './structured-clone.ts';
import { TextDecoder, TextEncoder } from './text-encoding.ts';
import { URL } from './url.ts';
import { URLSearchParams } from './url-search-params.ts';

export { fetch } from './fetch.ts';

/**
 * Defines URL, URLSearchParams, TextEncoder, TextDecoder, atob, btoa, crypto,
 * structuredClone, Headers, Request, Response and DOMException on `g`.
 *
 * @example
 * installWebGlobals(globalThis);
 */
export function installWebGlobals(g: typeof globalThis): void {
  const globals: [string, unknown][] = [
    ['URL', URL], ['URLSearchParams', URLSearchParams], ['TextEncoder', TextEncoder], ['TextDecoder', TextDecoder],
    ['atob', atob], ['btoa', btoa], ['crypto', createCrypto()], ['structuredClone', structuredClone],
    ['Headers', Headers], ['Request', Request], ['Response', Response], ['DOMException', DOMException],
  ];
  for (let i = 0; i < globals.length; i++) ObjectDefineProperty(g, globals[i]![0], dataDesc(globals[i]![1], false));
}
