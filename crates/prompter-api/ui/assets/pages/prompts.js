// Prompts of a workspace: names, revision counts, labels; search by name;
// pages of 20 (the cursor is in the URL, so every page reloads).

import { h, replace, link, table, chip } from '../dom.js';
import { get, withQuery } from '../api.js';

export const PAGE_SIZE = 20;

/** Without a scope: the workspaces to choose from. */
export function chooseWorkspace(view, ctx, page, title) {
  replace(view, h('h1', { tabindex: '-1' }, title),
    h('p', {}, 'Choose a workspace.'),
    ctx.workspaces.length
      ? h('ul', { class: 'plain' }, ctx.workspaces.map(w =>
        h('li', {}, link(withQuery(page, { org_id: w.org_id, workspace_id: w.workspace_id }), `${w.org_id} / ${w.workspace_id}`),
          h('span', { class: 'muted' }, ` · ${w.templates} template${w.templates === 1 ? '' : 's'}`))))
      : h('p', { class: 'muted' }, 'No workspace holds templates yet.'));
}

export async function render(view, ctx) {
  document.title = 'Prompts · Prompter';
  const s = ctx.scope();
  if (!s.org_id || !s.workspace_id) return chooseWorkspace(view, ctx, '/ui/prompts', 'Prompts');
  const q = ctx.query;
  const search = q.get('search') || '';
  const cursor = q.get('cursor') || '';
  const page = await get('/api/prompts', { ...s, search, cursor, limit: PAGE_SIZE });
  const input = h('input', { id: 'search', name: 'search', type: 'search', value: search, placeholder: 'part of a name' });
  const form = h('form', { class: 'row search', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    ctx.navigate(ctx.scoped('/ui/prompts', { search: input.value.trim() }));
  } },
  h('label', { for: 'search' }, 'Search by name'), input, h('button', { type: 'submit' }, 'Search'));
  const rows = page.items.map(p => h('tr', {},
    h('td', {}, link(ctx.scoped(`/ui/prompts/${encodeURIComponent(p.name)}`), p.name, { class: 'prompt-name' })),
    h('td', { class: 'num' }, String(p.revisions)),
    h('td', { class: 'num' }, p.latest_revision === null ? '—' : `r${p.latest_revision}`),
    h('td', {}, Object.entries(p.labels).map(([l, r]) => chip(`${l} → r${r}`)))));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    cursor ? link(ctx.scoped('/ui/prompts', { search }), '← First page') : null,
    page.next_cursor ? link(ctx.scoped('/ui/prompts', { search, cursor: page.next_cursor }), 'Next page →', { rel: 'next' }) : null);
  replace(view,
    h('h1', { tabindex: '-1' }, 'Prompts'),
    h('p', { class: 'muted' }, `${s.org_id} / ${s.workspace_id}`),
    form,
    page.items.length
      ? table('Prompts', ['Name', ['Revisions', 'num'], ['Latest', 'num'], 'Labels'], rows, { id: 'prompts' })
      : h('p', { class: 'empty' }, search ? `No prompt name contains “${search}”.` : 'No prompts in this workspace.'),
    pager);
}
