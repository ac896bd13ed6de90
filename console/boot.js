// Runs first and alone (no imports): takes the token from a sign-in link and starts the first
// page's API request while the console's modules are still loading, which on a loaded
// machine takes longer than the request itself. app.js (api.js) picks the answer up.
const KEY = 'isohost.console.token';
const link = /^#token=([A-Za-z0-9_\-.]+)/.exec(location.hash);
if (link !== null) {
  sessionStorage.setItem(KEY, link[1]);
  // Out of the address bar and the history at once.
  history.replaceState(null, '', location.pathname + '#/tenants');
}
const token = sessionStorage.getItem(KEY);
const first = location.hash.replace(/^#\/?/, '').split('/')[0];
if (token !== null && ['', 'tenants', 'egress', 'logs'].includes(first)) {
  const path = '/v1/admin/tenants';
  const answer = fetch(path, { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' });
  answer.catch(() => {}); // api.js reports failures when it reads it
  globalThis.isohostPrefetch = { path, token, answer };
}
