// The operator's console: hash routing over five pages, every action through /v1/admin/….
// Sign-in: a token of the operator realm, from the link `isohost console` prints (#token=…,
// a fragment, so it never reaches a server log; boot.js takes it) or pasted, kept in
// sessionStorage only.
import { api, ApiError, streamLines, token } from './api.js';
import { callsChart, latencyChart, legend, usageBar } from './charts.js';
import { bytes, h, ms, pill, table, when } from './dom.js';
import { highlighted } from './highlight.js';

const page = document.getElementById('page');
const statusBox = document.getElementById('status');
/** Work of the page on screen (a log stream, a refresh timer), stopped when the page changes. */
let pageAbort = new AbortController();
/** Whether a page was rendered before (focus handling). */
let rendered = false;

function say(text, isError = false) {
  statusBox.textContent = text;
  statusBox.className = isError ? 'error' : '';
  if (!isError) setTimeout(() => statusBox.textContent === text && (statusBox.textContent = ''), 4000);
}

function showSignIn(message) {
  document.getElementById('signin').hidden = false;
  document.getElementById('signout').hidden = true;
  document.getElementById('nav').hidden = true;
  page.replaceChildren();
  if (message) say(message, true);
  document.getElementById('token').focus();
}

document.getElementById('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token.set(document.getElementById('token').value);
  document.getElementById('token').value = '';
  if (!location.hash.startsWith('#/')) location.hash = '#/tenants';
  else route();
});
document.getElementById('signout').addEventListener('click', () => {
  token.clear();
  pageAbort.abort();
  showSignIn();
});

const PAGES = { tenants: tenantsPage, review: reviewPage, app: appPage, egress: egressPage, logs: logsPage };

async function route() {
  pageAbort.abort();
  pageAbort = new AbortController();
  if (!token.get()) return showSignIn();
  document.getElementById('signin').hidden = true;
  document.getElementById('signout').hidden = false;
  document.getElementById('nav').hidden = false;
  const [name, ...args] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const render = PAGES[name] ?? tenantsPage;
  const current = name === 'app' ? '' : PAGES[name] ? name : 'tenants';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    const content = await render(pageAbort.signal, ...args);
    page.replaceChildren(content);
    if (statusBox.className === 'error') say('');
    // After a navigation, focus moves to the new content (screen readers announce it); not on
    // first load, where the skip link stays the first stop.
    if (rendered) document.getElementById('main').focus({ preventScroll: true });
    rendered = true;
    performance.mark('isohost-page-rendered');
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      token.clear();
      return showSignIn(`Sign-in refused: ${err.message}`);
    }
    page.replaceChildren(h('div', { class: 'card', role: 'alert' }, `Could not load this page: ${err.message}`));
  }
}

// ---------- Tenants ----------

function summaryCells(s) {
  return [h('td', { class: 'num' }, `${s.calls} / `, h('span', { class: s.errors ? 'pill bad' : '' }, String(s.errors)))];
}

async function tenantsPage() {
  const { tenants, node } = await api('GET', '/v1/admin/tenants');
  const rows = tenants.map((t) => {
    const sb = t.sandbox;
    return h(
      'tr',
      { 'data-tenant': t.id },
      h('th', { scope: 'row' }, t.id, h('div', { class: 'muted' }, `realm ${t.realm}`)),
      h('td', {}, `${t.storage.engine} · ${t.storage.isolation}`, h('div', { class: 'muted mono' }, t.storage.namespace)),
      h('td', {}, t.compute.isolation, sb ? h('div', {}, pill(sb.state), ` ${sb.processes.length} proc · ${sb.crashes_last_minute} crash/min`) : null),
      h('td', {}, t.review === 'required' ? pill('review', 'warn') : 'none', t.pending_versions ? h('div', {}, h('a', { href: '#/review' }, `${t.pending_versions} pending`)) : null),
      h('td', { class: 'mono' }, t.network.allow.length ? t.network.allow.join('\n') : h('span', { class: 'muted' }, 'deny all')),
      h('td', { class: 'mono nowrap' }, h('div', {}, `${t.limits.memory_mb} MB memory`), h('div', {}, `${t.limits.cpu_ms} ms CPU`), h('div', {}, `${t.limits.wall_ms} ms wall`), h('div', {}, `${t.limits.instances} instances`)),
      h('td', { class: 'num' }, String(t.live_instances)),
      ...summaryCells(t.last_5m),
      ...summaryCells(t.last_60m),
      h('td', { class: 'num' }, `${ms(t.last_60m.p50_ms)} / ${ms(t.last_60m.p99_ms)}`),
      h('td', {}, `${bytes(t.storage_bytes)} of ${bytes(t.storage_quota_bytes)}`, h('div', { class: 'bar' }, usageBar(t.storage_bytes, t.storage_quota_bytes, `storage ${t.storage_bytes} of ${t.storage_quota_bytes} bytes`))),
      h('td', { class: 'num' }, t.last_60m.breaches ? pill(String(t.last_60m.breaches), 'bad') : '0'),
    );
  });
  const cards = tenants.map((t, i) =>
    h(
      'section',
      { class: 'card', 'aria-labelledby': `t-${i}` },
      h('h2', { id: `t-${i}` }, t.id),
      legend([['calls', 'calls/min'], ['errors', 'errors/min']]),
      callsChart(t.per_minute, `${t.id}: calls and errors per minute, last hour`),
      legend([['p50', 'p50'], ['p99', 'p99']]),
      latencyChart(t.per_minute, `${t.id}: p50 and p99 latency per minute, last hour`),
      h('h3', {}, 'Apps'),
      t.app_ids.length === 0
        ? h('p', { class: 'muted' }, 'no apps')
        : h('ul', {}, t.app_ids.map((a) => h('li', {}, h('a', { href: `#/app/${encodeURIComponent(t.id)}/${encodeURIComponent(a)}` }, a)))),
    ),
  );
  return h(
    'div',
    {},
    h('h1', {}, 'Tenants ', h('span', { class: 'muted' }, `node ${node}`)),
    table(
      'One row per tenant: isolation, identity, limits, and the last 5 and 60 minutes of calls',
      ['Tenant', 'Storage', 'Compute', 'Review', 'Allowlist', 'Limits', { text: 'Live', class: 'num' }, { text: 'Calls / errors 5 min', class: 'num' }, { text: 'Calls / errors 60 min', class: 'num' }, { text: 'p50 / p99', class: 'num' }, 'Storage used', { text: 'Breaches 60 min', class: 'num' }],
      rows,
    ),
    h('div', { class: 'grid' }, cards),
  );
}

// ---------- Review queue ----------

async function reviewPage() {
  const { pending } = await api('GET', '/v1/admin/review');
  const viewer = h('section', { class: 'card', 'aria-live': 'polite', id: 'source-viewer' }, h('p', { class: 'muted' }, 'Choose "View source" to read a version here (read-only, never run).'));
  const path = (p) => `/v1/admin/tenants/${encodeURIComponent(p.tenant)}/apps/${encodeURIComponent(p.app)}/versions/${encodeURIComponent(p.version)}`;
  async function decide(p, decision, reason) {
    await api('POST', `${path(p)}/${decision}`, { body: decision === 'reject' ? { reason } : {} });
    say(`${p.tenant}/${p.app} ${p.version} ${decision === 'approve' ? 'approved' : 'rejected'}`);
    route();
  }
  const rows = pending.map((p, i) => {
    const reasonId = `reason-${i}`;
    return h(
      'tr',
      { 'data-version': p.version },
      h('td', {}, p.tenant),
      h('td', {}, h('a', { href: `#/app/${encodeURIComponent(p.tenant)}/${encodeURIComponent(p.app)}` }, p.app)),
      h('td', { class: 'mono' }, p.version),
      h('td', { class: 'num' }, bytes(p.size)),
      h('td', { class: 'mono', title: p.sha256 }, p.sha256.slice(0, 24) + '…'),
      h('td', {}, when(p.uploaded_at)),
      h('td', {}, p.uploaded_by ?? '–'),
      h(
        'td',
        {},
        h('button', {
          type: 'button',
          class: 'secondary',
          onclick: async () => {
            const source = await api('GET', `${path(p)}/source`, { as: 'text' });
            viewer.replaceChildren(h('h2', {}, `${p.tenant}/${p.app} ${p.version}`), h('p', { class: 'muted mono' }, `sha256 ${p.sha256} · ${bytes(p.size)}`), highlighted(source, { label: `source of ${p.app} ${p.version}` }));
            viewer.querySelector('pre').focus();
          },
        }, 'View source'),
        h('button', { type: 'button', onclick: () => decide(p, 'approve').catch((e) => say(e.message, true)) }, 'Approve'),
        h('label', { for: reasonId }, 'Reason to reject'),
        h('input', { id: reasonId, type: 'text', maxlength: 2000 }),
        h('button', {
          type: 'button',
          class: 'danger',
          onclick: () => {
            const reason = document.getElementById(reasonId).value.trim();
            if (reason === '') return say('A rejection needs a reason', true);
            decide(p, 'reject', reason).catch((e) => say(e.message, true));
          },
        }, 'Reject'),
      ),
    );
  });
  return h(
    'div',
    {},
    h('h1', {}, 'Review queue'),
    pending.length === 0 ? h('p', { class: 'card' }, 'Nothing waits for review.') : table('Pending versions across tenants, oldest first', ['Tenant', 'App', 'Version', { text: 'Size', class: 'num' }, 'sha256', 'Uploaded', 'By', 'Review'], rows),
    viewer,
  );
}

// ---------- App ----------

async function appPage(_signal, tenant, appId) {
  const base = `/v1/admin/tenants/${encodeURIComponent(tenant)}/apps/${encodeURIComponent(appId)}`;
  const a = await api('GET', base);
  const approved = a.versions.filter((v) => v.state === 'approved');
  const shareInputs = approved.map((v) => {
    const id = `share-${v.version}`;
    return h('div', {}, h('label', { for: id }, `${v.version} %`), h('input', { id, type: 'number', min: 0, max: 100, step: 1, value: v.share, 'data-version': v.version }));
  });
  async function applyRollout() {
    const versions = {};
    for (const input of document.querySelectorAll('input[data-version]')) {
      const n = Number(input.value);
      if (n > 0) versions[input.dataset.version] = n;
    }
    await api('PUT', `${base}/rollout`, { body: { versions } });
    say('Rollout changed');
    route();
  }
  async function rollback() {
    const { rollout } = await api('POST', `${base}/rollback`, { body: {} });
    say(`Rolled back to ${Object.keys(rollout)[0]}`);
    route();
  }
  const versionRows = a.versions.map((v) =>
    h(
      'tr',
      { 'data-version': v.version },
      h('td', { class: 'mono' }, v.version),
      h('td', {}, pill(v.state), v.reason ? h('div', { class: 'muted' }, v.reason) : null),
      h('td', { class: 'num' }, `${v.share} %`),
      h('td', {}, when(v.uploaded_at)),
      h('td', {}, v.uploaded_by ?? '–'),
      h('td', {}, v.reviewed_by ? `${v.reviewed_by.sub} (${v.reviewed_by.realm})` : '–'),
      h('td', { class: 'mono' }, v.methods.join(', ')),
    ),
  );
  const errorRows = a.errors.map((e) =>
    h(
      'tr',
      {},
      h('td', {}, when(e.time)),
      h('td', { class: 'mono' }, e.version),
      h('td', { class: 'mono' }, e.method),
      h('td', {}, pill(e.code, 'bad')),
      h('td', { class: 'mono' }, e.file ? `${e.file}:${e.file_line}` : e.line ? `bundle line ${e.line}` : '–'),
      h('td', {}, e.source ? highlighted(e.source, { label: `bundle line ${e.line}`, firstLine: e.line }) : '–'),
    ),
  );
  return h(
    'div',
    {},
    h('h1', {}, `${a.tenant} / ${a.app}`),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', {}, 'Calls'), legend([['calls', 'calls/min'], ['errors', 'errors/min']]), callsChart(a.per_minute, `${a.app}: calls and errors per minute`),
        h('p', { class: 'muted' }, `5 min: ${a.last_5m.calls} calls, ${a.last_5m.errors} errors · 60 min: ${a.last_60m.calls} calls, ${a.last_60m.errors} errors`)),
      h('section', { class: 'card' }, h('h2', {}, 'Latency'), legend([['p50', 'p50'], ['p99', 'p99']]), latencyChart(a.per_minute, `${a.app}: p50 and p99 latency per minute`),
        h('p', { class: 'muted' }, `60 min: p50 ${ms(a.last_60m.p50_ms)}, p99 ${ms(a.last_60m.p99_ms)}`))),
    h('h2', {}, 'Versions'),
    table('Versions in upload order, with their state and share of callers', ['Version', 'State', { text: 'Share', class: 'num' }, 'Uploaded', 'By', 'Reviewed by', 'Methods'], versionRows),
    h('section', { class: 'card', 'aria-labelledby': 'rollout-title' },
      h('h2', { id: 'rollout-title' }, 'Rollout'),
      approved.length === 0 ? h('p', { class: 'muted' }, 'No approved version yet.') : h('div', { class: 'row' }, shareInputs),
      h('p', { class: 'muted' }, 'Whole percents summing to 100; a caller stays on one version while the shares stand.'),
      h('button', { type: 'button', id: 'apply-rollout', disabled: approved.length === 0, onclick: () => applyRollout().catch((e) => say(e.message, true)) }, 'Apply rollout'),
      h('button', { type: 'button', id: 'rollback', class: 'danger', onclick: () => rollback().catch((e) => say(e.message, true)) }, 'Roll back to the previous version'),
    ),
    h('h2', {}, 'Recent errors'),
    a.errors.length === 0 ? h('p', { class: 'muted' }, 'No errors in the last calls.') : table('Recent errors with the bundle line each was thrown at (codes only: messages may hold tenant data)', ['Time', 'Version', 'Method', 'Code', 'Where', 'Source line'], errorRows),
    h('p', {}, h('a', { href: `#/logs/${encodeURIComponent(a.tenant)}/${encodeURIComponent(a.app)}` }, 'Live log tail of this app')),
  );
}

// ---------- Egress ----------

async function egressPage(signal, tenant = '') {
  const { tenants } = await api('GET', '/v1/admin/tenants');
  const select = h('select', { id: 'egress-tenant', onchange: (e) => (location.hash = `#/egress/${encodeURIComponent(e.target.value)}`) },
    h('option', { value: '' }, 'every tenant'), tenants.map((t) => h('option', { value: t.id, selected: t.id === tenant }, t.id)));
  const body = h('tbody', {});
  async function refresh() {
    const q = tenant === '' ? '' : `?tenant=${encodeURIComponent(tenant)}`;
    const { decisions } = await api('GET', `/v1/admin/egress${q}`, { signal });
    body.replaceChildren(...decisions.map((d) => h('tr', {}, h('td', {}, when(d.time)), h('td', {}, d.tenant ?? '–'), h('td', {}, d.app ?? '–'), h('td', {}, pill(d.decision)), h('td', { class: 'mono' }, d.host), h('td', { class: 'num' }, d.port ?? '–'), h('td', { class: 'mono' }, d.rule ?? '–'), h('td', {}, d.reason ?? '–'))));
    if (decisions.length === 0) body.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No decisions yet.')));
  }
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 3000);
  signal.addEventListener('abort', () => clearInterval(timer));
  return h(
    'div',
    {},
    h('h1', {}, 'Egress'),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'egress-tenant' }, 'Tenant'), select), h('p', { class: 'muted' }, 'Recent allow/deny decisions of the egress proxy, newest first; refreshed every 3 s.')),
    h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'muted' }, 'Egress decisions'), h('thead', {}, h('tr', {}, ['Time', 'Tenant', 'App', 'Decision', 'Host', 'Port', 'Rule', 'Reason'].map((x) => h('th', { scope: 'col' }, x)))), body)),
  );
}

// ---------- Logs ----------

const MAX_LOG_LINES = 500;

async function logsPage(signal, tenant, appId = '') {
  const { tenants } = await api('GET', '/v1/admin/tenants');
  tenant ??= tenants[0]?.id ?? '';
  const list = h('ol', { class: 'logs', id: 'log-lines', 'aria-label': 'log lines', tabindex: 0 });
  const select = h('select', { id: 'logs-tenant' }, tenants.map((t) => h('option', { value: t.id, selected: t.id === tenant }, t.id)));
  const appInput = h('input', { id: 'logs-app', type: 'text', value: appId, placeholder: 'every app' });
  const state = h('p', { class: 'muted', id: 'logs-state' }, 'connecting…');
  const go = () => (location.hash = `#/logs/${encodeURIComponent(select.value)}${appInput.value.trim() ? '/' + encodeURIComponent(appInput.value.trim()) : ''}`);
  const q = new URLSearchParams({ follow: 'true' });
  if (appId) q.set('app', appId);
  if (tenant) {
    streamLines(`/v1/admin/tenants/${encodeURIComponent(tenant)}/logs?${q}`, (line) => {
      let text = line;
      try {
        const l = JSON.parse(line);
        text = l.type === 'call'
          ? `${l.time} call ${l.app}@${l.version} ${l.method} → ${l.outcome} ${l.ms} ms  req ${l.request_id}`
          : l.type === 'log' ? `${l.time} log ${l.level} ${l.app}@${l.version} (${l.msg_chars} chars withheld)  req ${l.request_id}` : `${l.time} ${l.type} ${l.dropped ?? ''} lines dropped`;
      } catch { /* shown as received */ }
      list.append(h('li', {}, text));
      while (list.childElementCount > MAX_LOG_LINES) list.firstElementChild.remove();
      list.scrollTop = list.scrollHeight;
    }, signal).then(() => (state.textContent = 'stream ended'), (e) => e.name !== 'AbortError' && (state.textContent = `stream failed: ${e.message}`));
    state.textContent = `live: ${tenant}${appId ? ' / ' + appId : ''} (message text of mini-app log lines is withheld)`;
  }
  return h(
    'div',
    {},
    h('h1', {}, 'Logs'),
    h('form', { class: 'row', onsubmit: (e) => (e.preventDefault(), go()) },
      h('div', {}, h('label', { for: 'logs-tenant' }, 'Tenant'), select),
      h('div', {}, h('label', { for: 'logs-app' }, 'App (optional)'), appInput),
      h('div', {}, h('button', { type: 'submit' }, 'Tail'))),
    state,
    list,
  );
}

// boot.js has taken a sign-in link's token already.
window.addEventListener('hashchange', route);
route();
