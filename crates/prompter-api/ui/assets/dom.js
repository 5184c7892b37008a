// DOM helpers. Server text is only ever inserted as text (textContent /
// text nodes), never parsed as HTML.

/** Creates an element: attrs (class, href, for, …; `on*` functions become
 *  listeners; booleans set or skip the attribute), then children (strings
 *  become text nodes; null/false are skipped; arrays are flattened). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A link inside the console (handled by the router, no reload). */
export function link(href, text, attrs = {}) {
  return h('a', { href, 'data-nav': '', ...attrs }, text);
}

/** A definition list from [term, value] pairs (values: text or nodes). */
export function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(p => p).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

/** A table inside a horizontally scrolling wrapper; a head cell may be
 *  [text, class]. */
export function table(caption, head, rows, attrs = {}) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', attrs,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, head.map(c => Array.isArray(c)
        ? h('th', { scope: 'col', class: c[1] }, c[0])
        : h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
}

/** A label chip. */
export function chip(text, attrs = {}) {
  return h('span', { class: 'chip', ...attrs }, text);
}

/** Pretty JSON text of a value. */
export function pretty(v) {
  return JSON.stringify(v, null, 2);
}

/** A timestamp as local date and time, with the exact value as title. */
export function time(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return h('time', { datetime: ts, title: ts },
    isNaN(d) ? ts : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }));
}

/** A short form of a long id or hash, full value in the title. */
export function short(s, n = 12) {
  if (!s) return '—';
  return h('code', { title: s }, s.length > n ? s.slice(0, n) + '…' : s);
}

/** An error box: the server's code and message. */
export function errorBox(err) {
  return h('div', { class: 'alert error', role: 'alert' },
    h('strong', {}, err.code || 'ERROR'), ' ', err.message);
}
