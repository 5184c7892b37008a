// Results of a template, with the API's filters (version, country, time),
// and one result: the rendered request, the response (pretty JSON and the
// model's text), the version key and fingerprint.

import { h, replace, link, facts, time, pretty } from '../dom.js';
import { get, withQuery } from '../api.js';
import { resultsTable } from './template.js';

const PAGE = 25;

/** `datetime-local` value ↔ RFC 3339 (UTC). */
function toLocalInput(rfc) {
  if (!rfc) return '';
  const d = new Date(rfc);
  if (isNaN(d)) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? '' : d.toISOString();
}

export async function list(view, ctx, id) {
  const q = ctx.query;
  const filters = {
    version_id: q.get('version_id') || '', country: q.get('country') || '',
    since: q.get('since') || '', until: q.get('until') || '',
    batch_id: q.get('batch_id') || '',
  };
  const cursor = q.get('cursor') || '';
  const [t, versions, page] = await Promise.all([
    get(`/api/prompt-templates/${encodeURIComponent(id)}`),
    get(`/api/prompt-templates/${encodeURIComponent(id)}/versions`, { limit: 100 }),
    get(`/api/prompt-templates/${encodeURIComponent(id)}/results`, { ...filters, cursor, limit: PAGE }),
  ]);
  document.title = `Results of ${t.name} · Prompter`;
  ctx.remember(t);
  const version = h('select', { id: 'f-version', name: 'version_id' },
    h('option', { value: '' }, 'Any version'),
    versions.items.map(v => h('option', { value: v.version_id, selected: v.version_id === filters.version_id },
      `${v.provider}/${v.model_id} · ${v.provider_version_key}`)));
  const country = h('input', { id: 'f-country', name: 'country', value: filters.country, size: 6, placeholder: 'e.g. uk' });
  const since = h('input', { id: 'f-since', name: 'since', type: 'datetime-local', value: toLocalInput(filters.since) });
  const until = h('input', { id: 'f-until', name: 'until', type: 'datetime-local', value: toLocalInput(filters.until) });
  const form = h('form', { class: 'card fields', onsubmit: (e) => {
    e.preventDefault();
    ctx.navigate(withQuery(`/ui/templates/${id}/results`, {
      version_id: version.value, country: country.value.trim(),
      since: fromLocalInput(since.value), until: fromLocalInput(until.value),
      batch_id: filters.batch_id,
    }));
  } },
  h('div', {}, h('label', { for: 'f-version' }, 'Version'), version),
  h('div', {}, h('label', { for: 'f-country' }, 'Country'), country),
  h('div', {}, h('label', { for: 'f-since' }, 'Stored from'), since),
  h('div', {}, h('label', { for: 'f-until' }, 'Stored before'), until),
  h('div', { class: 'end' }, h('button', { type: 'submit' }, 'Filter'),
    ' ', link(`/ui/templates/${id}/results`, 'Clear')));
  replace(view,
    h('p', { class: 'crumbs' }, link(`/ui/templates/${t.id}`, t.name), ' /'),
    h('h1', { tabindex: '-1' }, `Results of ${t.name}`),
    filters.batch_id ? h('p', { id: 'batch-filter' }, 'Only the results of batch ', link(ctx.scoped(`/ui/batches/${filters.batch_id}`), h('code', {}, filters.batch_id.slice(0, 8))), '.') : null,
    form,
    resultsTable(page.items),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? link(withQuery(`/ui/templates/${id}/results`, filters), '← First page') : null,
      page.next_cursor ? link(withQuery(`/ui/templates/${id}/results`, { ...filters, cursor: page.next_cursor }), 'Next page →', { rel: 'next' }) : null));
}

/** The messages of a stored request, when it holds chat messages. */
function messagesOf(request) {
  const msgs = request && (request.messages || (request.body && request.body.messages));
  if (!Array.isArray(msgs)) return null;
  return msgs.map(m => h('div', { class: `message ${m.role || ''}` },
    h('div', { class: 'role' }, m.role || '?'),
    h('pre', { class: 'text' }, typeof m.content === 'string' ? m.content : pretty(m.content))));
}

export async function show(view, ctx, id) {
  const r = await get(`/api/prompt-templates/results/${encodeURIComponent(id)}`);
  const t = await get(`/api/prompt-templates/${encodeURIComponent(r.template_id)}`).catch(() => null);
  document.title = `Result …${id.slice(-8)} · Prompter`;
  if (t) ctx.remember(t);
  const messages = messagesOf(r.request);
  replace(view,
    h('p', { class: 'crumbs' }, t ? [link(`/ui/templates/${t.id}`, t.name), ' / ', link(`/ui/templates/${t.id}/results`, 'Results'), ' /'] : null),
    h('h1', { tabindex: '-1' }, `Result …${id.slice(-8)}`),
    h('section', { class: 'card' }, facts([
      ['Result id', h('code', {}, r.result_id)],
      ['Template', link(`/ui/templates/${r.template_id}`, t ? t.name : r.template_id)],
      ['Revision', r.revision ? `r${r.revision}${r.label ? ` (run via label ${r.label})` : ''}` : '—'],
      ['Version key', h('code', { id: 'version-key' }, r.provider_version_key)],
      ['Fingerprint', r.system_fingerprint ? h('code', { id: 'fingerprint' }, r.system_fingerprint) : '—'],
      ['Country', r.country || '—'],
      ['Stored', time(r.created_at)],
      ['Usage', r.usage ? `${r.usage.input_tokens} input / ${r.usage.output_tokens} output tokens${r.usage.cost_usd != null ? ` · $${r.usage.cost_usd.toFixed(6)}` : ''}` : '—'],
    ])),
    h('section', { 'aria-labelledby': 'h-output' },
      h('h2', { id: 'h-output' }, 'Model output'),
      r.output != null ? h('pre', { class: 'text output', id: 'output' }, r.output) : h('p', { class: 'muted' }, 'No text output stored.')),
    h('section', { 'aria-labelledby': 'h-request' },
      h('h2', { id: 'h-request' }, 'Rendered request'),
      messages ? h('div', { class: 'messages' }, messages) : null,
      h('details', { open: !messages }, h('summary', {}, 'Request JSON'), h('pre', { class: 'json', id: 'request-json' }, pretty(r.request)))),
    h('section', { 'aria-labelledby': 'h-response' },
      h('h2', { id: 'h-response' }, 'Response'),
      h('pre', { class: 'json', id: 'response-json' }, pretty(r.response))),
    Object.keys(r.analysis_config || {}).length
      ? h('section', {}, h('h2', {}, 'Analysis config'), h('pre', { class: 'json' }, pretty(r.analysis_config)))
      : null);
}
