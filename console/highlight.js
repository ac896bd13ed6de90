// Read-only syntax highlighting of bundle sources: a tiny tokenizer that only ever produces
// text nodes inside <span> elements (never innerHTML), so nothing in a source can become
// markup, and nothing runs (the page's CSP allows no inline script either).
const KEYWORDS = new Set(('await async break case catch class const continue debugger default delete do else export extends ' +
  'false finally for function if import in instanceof let new null of return static super switch this throw true try ' +
  'typeof undefined var void while with yield').split(' '));

const TOKEN = /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\[\s\S])*`)|(\b(?:0[xob][0-9a-f_]+|\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?n?)\b)|([A-Za-z_$][\w$]*)/gi;

/** Splits source into [class, text] pieces; class is '' for plain text. */
export function tokenize(source) {
  const out = [];
  let last = 0;
  for (const m of source.matchAll(TOKEN)) {
    if (m[4] !== undefined && !KEYWORDS.has(m[4])) continue;
    if (m.index > last) out.push(['', source.slice(last, m.index)]);
    out.push([m[1] ? 'tok-com' : m[2] ? 'tok-str' : m[3] ? 'tok-num' : 'tok-kw', m[0]]);
    last = m.index + m[0].length;
  }
  if (last < source.length) out.push(['', source.slice(last)]);
  return out;
}

/** A <pre> of numbered lines, highlighted; `firstLine` numbers an excerpt (an error's bundle line). */
export function highlighted(source, { label = 'source', maxLines = 20000, firstLine = 1 } = {}) {
  const pre = document.createElement('pre');
  pre.className = 'source';
  pre.tabIndex = 0;
  pre.setAttribute('aria-label', label);
  const newLine = (n) => {
    const span = document.createElement('span');
    span.className = 'ln';
    span.append(Object.assign(document.createElement('span'), { className: 'no', textContent: String(n) }));
    span.lastChild.setAttribute('aria-hidden', 'true');
    return span;
  };
  let count = 1;
  let line = newLine(firstLine);
  const add = (cls, text) => {
    if (text === '') return;
    const node = cls === '' ? document.createTextNode(text) : Object.assign(document.createElement('span'), { className: cls, textContent: text });
    line.append(node);
  };
  for (const [cls, text] of tokenize(source)) {
    const parts = text.split('\n');
    parts.forEach((part, i) => {
      if (i > 0) {
        pre.append(line);
        if (++count > maxLines) return;
        line = newLine(firstLine + count - 1);
      }
      add(cls, part);
    });
    if (count > maxLines) break;
  }
  pre.append(line);
  return pre;
}
