// Builds DOM from data with text nodes only: no innerHTML anywhere in the console, so no
// tenant-chosen string (an app id, a host, a source line) can become markup.

/** h('td', { class: 'num' }, 'text', childNode, …); attributes starting with "on" take a listener. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

/** A table with a caption (screen readers announce it) and header cells with scope. */
export function table(caption, headers, rows) {
  const head = h('tr', {}, headers.map((x) => (typeof x === 'string' ? h('th', { scope: 'col' }, x) : h('th', { scope: 'col', class: x.class }, x.text))));
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'muted' }, caption), h('thead', {}, head), h('tbody', {}, rows)));
}

export function pill(text, cls = text) {
  return h('span', { class: 'pill ' + cls }, text);
}

export function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1024 / 1024).toFixed(1) + ' MiB';
}

export function ms(v) {
  return v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) + ' ms' : Math.round(v) + ' ms';
}

export function when(iso) {
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString());
}
