// The admin API as the console calls it: same origin, the operator token from sessionStorage.
const KEY = 'isohost.console.token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t.trim()),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res) {
  let code = 'http_' + res.status;
  let message = res.statusText;
  try {
    const body = await res.json();
    code = body.error.code;
    message = body.error.message;
  } catch {
    // not our error shape
  }
  return new ApiError(res.status, code, message);
}

/** The answer boot.js started for `path` with the token in force; taken once. */
function takePrefetched(path) {
  const p = globalThis.isohostPrefetch;
  if (p === undefined || p.path !== path || p.token !== token.get()) return undefined;
  globalThis.isohostPrefetch = undefined;
  return p.answer;
}

/** One admin API request; JSON in and out (text when `as` is 'text'). */
export async function api(method, path, { body, as = 'json', signal } = {}) {
  const headers = { authorization: 'Bearer ' + token.get() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const early = method === 'GET' && body === undefined ? takePrefetched(path) : undefined;
  const res = await (early ?? fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' }));
  if (!res.ok) throw await failure(res);
  return as === 'text' ? res.text() : as === 'response' ? res : res.json();
}

/** Reads an NDJSON response line by line (fetch streaming) until `signal` aborts. */
export async function streamLines(path, onLine, signal) {
  const res = await api('GET', path, { as: 'response', signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    rest += value;
    let nl;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line !== '') onLine(line);
    }
  }
}
