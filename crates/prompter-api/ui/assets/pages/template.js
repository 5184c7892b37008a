// One template: config, canonical JSON and hash, variables, a render
// preview (fill the variables, see the messages; missing ones are named),
// provider version rows and the latest results.

import { h, replace, link, table, facts, time, short, pretty, chip, errorBox } from '../dom.js';
import { api, get, ApiError, withQuery } from '../api.js';
import { revisionOf } from './compare.js';

/** Variables as the server reads them: from the prompt fetch by revision;
 *  before releases, the `{{name}}` placeholders of the texts. */
async function variablesOf(t, revision) {
  if (revision !== null) {
    try {
      const p = await get(`/api/prompts/${encodeURIComponent(t.name)}`,
        { org_id: t.org_id, workspace_id: t.workspace_id, revision });
      return { variables: p.variables, labels: p.labels };
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
    }
  }
  const seen = [];
  for (const text of [t.system_instructions, t.user_prompt_template]) {
    for (const m of (text || '').matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g)) {
      if (!seen.includes(m[1])) seen.push(m[1]);
    }
  }
  return { variables: seen, labels: [] };
}

export async function render(view, ctx, id) {
  const t = await get(`/api/prompt-templates/${encodeURIComponent(id)}`);
  document.title = `${t.name} · template · Prompter`;
  const revision = await revisionOf(t);
  const [{ variables, labels }, versions, results] = await Promise.all([
    variablesOf(t, revision),
    get(`/api/prompt-templates/${encodeURIComponent(id)}/versions`, { limit: 20 }),
    get(`/api/prompt-templates/${encodeURIComponent(id)}/results`, { limit: 10 }),
  ]);
  const scope = { org_id: t.org_id, workspace_id: t.workspace_id };
  ctx.remember(scope);
  const promptUrl = withQuery(`/ui/prompts/${encodeURIComponent(t.name)}`, scope);
  let canonical = t.config_canonical_json;
  try { canonical = pretty(JSON.parse(canonical)); } catch { /* shown as stored */ }

  replace(view,
    h('p', { class: 'crumbs' }, link(withQuery('/ui/prompts', scope), 'Prompts'), ' / ', link(promptUrl, t.name), ' /'),
    h('h1', { tabindex: '-1' }, `${t.name}${revision !== null ? ` r${revision}` : ''}`),
    h('p', {}, labels.map(l => chip(l, { class: 'chip label' })), t.deleted_at ? chip('deleted', { class: 'chip warn' }) : null),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'h-config' },
        h('h2', { id: 'h-config' }, 'Config'),
        facts([
          ['Template id', h('code', {}, t.id)],
          ['Org / workspace', `${t.org_id} / ${t.workspace_id}`],
          ['Provider', t.provider || '—'],
          ['Model', h('code', {}, t.model_id)],
          ['Config hash', h('code', { class: 'hash', id: 'config-hash' }, t.config_hash)],
          ['Created', time(t.created_at)],
          t.created_by ? ['Created by', t.created_by] : null,
          t.deleted_at ? ['Deleted', time(t.deleted_at)] : null,
          ['Variables', variables.length ? h('span', { id: 'variables' }, variables.map((v, i) => [i ? ', ' : '', h('code', {}, v)])) : 'none'],
          ['Countries', JSON.stringify(t.country_set)],
          ['Inference params', h('code', {}, JSON.stringify(t.inference_params))],
        ]),
        h('h3', {}, 'System instructions'),
        h('pre', { class: 'text', id: 'system-text' }, t.system_instructions || ''),
        h('h3', {}, 'User prompt template'),
        h('pre', { class: 'text', id: 'user-text' }, t.user_prompt_template)),
      renderPreview(id, variables)),
    h('section', { 'aria-labelledby': 'h-canonical' },
      h('h2', { id: 'h-canonical' }, 'Canonical JSON'),
      h('p', { class: 'muted' }, 'The config hash is computed over this canonical form (shown indented).'),
      h('pre', { class: 'json', id: 'canonical' }, canonical)),
    h('section', { 'aria-labelledby': 'h-versions' },
      h('h2', { id: 'h-versions' }, 'Provider versions'),
      versions.items.length ? table('Provider version rows', ['Provider', 'Model', 'Version key', 'First seen', 'Last seen', 'Fingerprint captured'],
        versions.items.map(v => h('tr', {},
          h('td', {}, v.provider), h('td', {}, v.model_id), h('td', {}, h('code', {}, v.provider_version_key)),
          h('td', {}, time(v.first_seen_at)), h('td', {}, time(v.last_seen_at)), h('td', {}, time(v.fingerprint_captured_at)))),
        { id: 'versions' }) : h('p', { class: 'muted' }, 'No provider version seen yet (no run or ensure-version).')),
    h('section', { 'aria-labelledby': 'h-results' },
      h('h2', { id: 'h-results' }, 'Latest results'),
      resultsTable(results.items),
      h('p', {}, link(`/ui/templates/${t.id}/results`, 'All results, with filters →'))));
}

export function resultsTable(items) {
  if (!items.length) return h('p', { class: 'muted' }, 'No results.');
  return table('Results, newest first', ['Result', 'Stored', 'Country', 'Version key', 'Revision', ['Tokens', 'num']],
    items.map(r => h('tr', {},
      h('td', {}, link(`/ui/results/${r.result_id}`, `…${r.result_id.slice(-8)}`, { title: r.result_id, class: 'mono' })),
      h('td', {}, time(r.created_at)),
      h('td', {}, r.country || '—'),
      h('td', {}, short(r.provider_version_key, 24)),
      h('td', {}, r.revision ? `r${r.revision}${r.label ? ` via ${r.label}` : ''}` : '—'),
      h('td', { class: 'num' }, r.usage ? `${r.usage.input_tokens} in / ${r.usage.output_tokens} out` : '—'))),
    { class: 'results' });
}

function renderPreview(id, variables) {
  const inputs = variables.map(v => h('div', {},
    h('label', { for: `var-${v}` }, v),
    h('input', { id: `var-${v}`, name: v, 'data-var': v, autocomplete: 'off' })));
  const out = h('div', { id: 'render-output', 'aria-live': 'polite' });
  const form = h('form', { class: 'fields stack', onsubmit: async (e) => {
    e.preventDefault();
    const vars = {};
    for (const el of form.querySelectorAll('input[data-var]')) {
      if (el.value !== '') vars[el.dataset.var] = el.value;
    }
    try {
      const r = await api('POST', `/api/prompt-templates/${encodeURIComponent(id)}/render`, { body: { variables: vars } });
      replace(out,
        r.messages.map(m => h('div', { class: `message ${m.role}` },
          h('div', { class: 'role' }, m.role), h('pre', { class: 'text' }, m.content))),
        r.unused.length ? h('p', { class: 'muted' }, 'Not used by this prompt: ', r.unused.join(', ')) : null);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'MISSING_VARIABLES') {
        replace(out, h('div', { class: 'alert warn', role: 'alert', id: 'missing-variables' },
          h('strong', {}, 'Missing variables: '),
          (err.detail.missing || []).map((v, i) => [i ? ', ' : '', h('code', {}, v)]),
          '. Fill them in to see the messages.'));
      } else if (!(err instanceof ApiError && err.status === 401)) {
        replace(out, errorBox(err));
      }
    }
  } },
  inputs.length ? inputs : h('p', { class: 'muted' }, 'This prompt uses no variables.'),
  h('div', {}, h('button', { type: 'submit', id: 'render' }, 'Render')));
  return h('section', { class: 'card', 'aria-labelledby': 'h-render' },
    h('h2', { id: 'h-render' }, 'Render preview'),
    h('p', { class: 'muted' }, 'Fill the variables and render the messages a run would send (nothing is sent to a model).'),
    form, out);
}
