// Inline SVG charts drawn from the admin API's per-minute points: calls and errors as bars,
// p50 and p99 latency as lines. Presentation attributes and classes only (the CSP allows no
// inline style).
const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(title, width, height) {
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.append(el('title', {}, title));
  return svg;
}

const W = 360, H = 120, PAD_L = 46, PAD_B = 16, PAD_T = 8;

function axes(svg, max, unit) {
  svg.append(el('line', { x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B, class: 'axis' }));
  svg.append(el('line', { x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B, class: 'axis' }));
  svg.append(el('text', { x: PAD_L - 4, y: PAD_T + 8, 'text-anchor': 'end' }, `${max}${unit}`));
  svg.append(el('text', { x: PAD_L - 4, y: H - PAD_B, 'text-anchor': 'end' }, '0'));
  svg.append(el('text', { x: PAD_L, y: H - 2 }, '−60 min'));
  svg.append(el('text', { x: W, y: H - 2, 'text-anchor': 'end' }, 'now'));
}

/** Calls (and errors within them) per minute over the last hour. */
export function callsChart(points, title) {
  const svg = frame(title, W, H);
  const max = Math.max(1, ...points.map((p) => p.calls));
  axes(svg, max, '');
  const bw = (W - PAD_L) / points.length;
  const y = (v) => H - PAD_B - (v / max) * (H - PAD_B - PAD_T);
  points.forEach((p, i) => {
    if (p.calls === 0) return;
    const x = PAD_L + i * bw + 0.5;
    svg.append(el('rect', { x, y: y(p.calls), width: Math.max(1, bw - 1), height: H - PAD_B - y(p.calls), class: 'calls' }));
    if (p.errors > 0) svg.append(el('rect', { x, y: y(p.errors), width: Math.max(1, bw - 1), height: H - PAD_B - y(p.errors), class: 'errors' }));
  });
  return svg;
}

/** p50 and p99 latency per minute (minutes without calls leave a gap). */
export function latencyChart(points, title) {
  const svg = frame(title, W, H);
  const max = Math.max(1, ...points.map((p) => p.p99_ms ?? 0));
  axes(svg, Math.round(max * 10) / 10, ' ms');
  const step = (W - PAD_L) / points.length;
  const y = (v) => H - PAD_B - (v / max) * (H - PAD_B - PAD_T);
  for (const key of ['p50', 'p99']) {
    let d = '';
    let pen = false;
    points.forEach((p, i) => {
      const v = p[key + '_ms'];
      if (v === null || v === undefined) return void (pen = false);
      const x = (PAD_L + (i + 0.5) * step).toFixed(1);
      d += `${pen ? 'L' : 'M'}${x},${y(v).toFixed(1)}`;
      pen = true;
      // A dot per minute: a lone minute has no line to draw.
      svg.append(el('circle', { cx: x, cy: y(v).toFixed(1), r: 2, class: key }));
    });
    if (d !== '') svg.append(el('path', { d, class: key }));
  }
  return svg;
}

/** A small bar: `used` of `total`. */
export function usageBar(used, total, title) {
  const svg = el('svg', { viewBox: '0 0 100 8', width: 120, height: 8, role: 'img', 'aria-label': title, preserveAspectRatio: 'none' });
  const share = total > 0 ? Math.min(1, used / total) : 0;
  svg.append(el('rect', { x: 0, y: 0, width: (share * 100).toFixed(2), height: 8, class: share > 0.9 ? 'errors' : 'calls' }));
  return svg;
}

export function legend(keys) {
  const div = document.createElement('div');
  div.className = 'legend';
  for (const [cls, text] of keys) {
    const span = document.createElement('span');
    span.append(Object.assign(document.createElement('span'), { className: 'swatch ' + cls }), text);
    div.append(span);
  }
  return div;
}
