// Drift events of a workspace, newest first, grouped per provider/model,
// each linked to its template.

import { h, replace, link, table, time } from '../dom.js';
import { get } from '../api.js';
import { chooseWorkspace } from './prompts.js';

export async function render(view, ctx) {
  document.title = 'Drift · Prompter';
  const s = ctx.scope();
  if (!s.org_id || !s.workspace_id) return chooseWorkspace(view, ctx, '/ui/drift', 'Drift');
  const page = await get('/api/prompt-templates/drift', { ...s, limit: 500 });
  const groups = new Map();
  for (const e of page.items) {
    const k = `${e.provider}/${e.model_id}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(e);
  }
  const names = new Map();
  await Promise.all([...new Set(page.items.map(e => e.template_id))].slice(0, 50).map(async (id) => {
    try { names.set(id, (await get(`/api/prompt-templates/${id}`)).name); } catch { /* id shown */ }
  }));
  replace(view,
    h('h1', { tabindex: '-1' }, 'Drift'),
    h('p', { class: 'muted' }, `${s.org_id} / ${s.workspace_id} · a provider served a new model build (version key) for a template.`),
    page.items.length ? [...groups.entries()].map(([k, events]) => h('section', { class: 'drift-group' },
      h('h2', {}, h('code', {}, k), h('span', { class: 'muted' }, ` · ${events.length} event${events.length === 1 ? '' : 's'}`)),
      table(`Drift events of ${k}, newest first`, ['Detected', 'Template', 'Previous key', 'New key'], events.map(e => h('tr', {},
        h('td', {}, time(e.detected_at)),
        h('td', {}, link(`/ui/templates/${e.template_id}`, names.get(e.template_id) || e.template_id.slice(0, 8))),
        h('td', {}, h('code', { class: 'old' }, e.previous_key)),
        h('td', {}, h('code', { class: 'new' }, e.new_key)))), { class: 'drift' })))
      : h('p', { class: 'empty' }, 'No drift events in this workspace.'),
    page.next_cursor ? h('p', { class: 'muted' }, 'Showing the newest 500 events.') : null);
}
