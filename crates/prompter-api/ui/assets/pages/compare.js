// Two templates side by side (two revisions of a prompt, or any two): the
// config differences from the diff route, changed paths highlighted, and
// the prompt texts diffed line by line.

import { h, replace, link, table, short, time } from '../dom.js';
import { get } from '../api.js';
import { sideBySide } from '../diff.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function pickForm(ctx, left, right) {
  const l = h('input', { id: 'left-id', name: 'left', value: left || '', required: true, pattern: UUID.source, size: 38, spellcheck: 'false' });
  const r = h('input', { id: 'right-id', name: 'right', value: right || '', required: true, pattern: UUID.source, size: 38, spellcheck: 'false' });
  return h('form', { class: 'card fields', onsubmit: (e) => {
    e.preventDefault();
    ctx.navigate(`/ui/compare?left=${encodeURIComponent(l.value.trim())}&right=${encodeURIComponent(r.value.trim())}`);
  } },
  h('div', {}, h('label', { for: 'left-id' }, 'Left template id'), l),
  h('div', {}, h('label', { for: 'right-id' }, 'Right template id'), r),
  h('div', { class: 'end' }, h('button', { type: 'submit' }, 'Compare')));
}

function show(v) {
  return v === null || v === undefined ? h('span', { class: 'muted' }, '(absent)') : h('code', {}, typeof v === 'string' ? v : JSON.stringify(v));
}

function textDiff(title, a, b) {
  const rows = sideBySide(a || '', b || '');
  const changed = rows.some(r => r.kind !== 'same');
  return h('section', { class: 'textdiff' },
    h('h3', {}, title, changed ? '' : h('span', { class: 'muted' }, ' · identical')),
    table(`${title}: left and right, line by line`, ['#', 'Left', '#', 'Right'], rows.map(r => h('tr', { class: `d-${r.kind}` },
      h('td', { class: 'ln' }, r.leftNo ?? ''),
      h('td', { class: 'code left' }, r.left === null ? '' : h('span', { class: 'mark' }, r.kind === 'same' ? ' ' : '−'), r.left ?? ''),
      h('td', { class: 'ln' }, r.rightNo ?? ''),
      h('td', { class: 'code right' }, r.right === null ? '' : h('span', { class: 'mark' }, r.kind === 'same' ? ' ' : '+'), r.right ?? ''))),
    { class: 'diff' }));
}

export async function render(view, ctx) {
  document.title = 'Compare · Prompter';
  const q = ctx.query;
  const left = q.get('left'), right = q.get('right');
  if (!left || !right) {
    replace(view, h('h1', { tabindex: '-1' }, 'Compare'),
      h('p', {}, 'Compare any two templates: paste their ids, or pick two revisions on a prompt’s page.'),
      pickForm(ctx, left, right));
    return;
  }
  const [a, b, diff] = await Promise.all([
    get(`/api/prompt-templates/${encodeURIComponent(left)}`),
    get(`/api/prompt-templates/${encodeURIComponent(right)}`),
    get(`/api/prompt-templates/${encodeURIComponent(left)}/diff/${encodeURIComponent(right)}`),
  ]);
  const [ra, rb] = await Promise.all([a, b].map(t => revisionOf(t)));
  ctx.remember(a);
  const label = (t, r) => `${t.name}${r ? ` r${r}` : ''}`;
  const head = (t, r) => h('div', { class: 'card side' },
    h('h2', {}, link(`/ui/templates/${t.id}`, label(t, r))),
    h('p', { class: 'muted' }, `${t.org_id} / ${t.workspace_id} · ${t.provider || '?'} ${t.model_id}`),
    h('p', {}, 'Hash ', short(t.config_hash, 16), ' · ', time(t.created_at)));
  const paths = diff.differences.map(d => h('tr', { class: 'changed' },
    h('th', { scope: 'row' }, h('code', {}, d.path)), h('td', {}, show(d.left)), h('td', {}, show(d.right))));
  replace(view,
    h('h1', { tabindex: '-1' }, `Compare ${label(a, ra)} with ${label(b, rb)}`),
    h('div', { class: 'sides' }, head(a, ra), head(b, rb)),
    h('section', { 'aria-labelledby': 'h-config' },
      h('h2', { id: 'h-config' }, 'Config differences'),
      diff.differences.length
        ? table('Changed config paths', ['Path', 'Left', 'Right'], paths, { id: 'config-diff', class: 'paths' })
        : h('p', { class: 'alert ok' }, 'The canonical configs are identical.')),
    h('section', { 'aria-labelledby': 'h-texts' },
      h('h2', { id: 'h-texts' }, 'Prompt texts'),
      textDiff('System instructions', a.system_instructions, b.system_instructions),
      textDiff('User prompt template', a.user_prompt_template, b.user_prompt_template)),
    h('details', {}, h('summary', {}, 'Compare other templates'), pickForm(ctx, left, right)));
}

/** The template's revision number within its prompt (null before releases). */
export async function revisionOf(t) {
  try {
    const revs = await get(`/api/prompts/${encodeURIComponent(t.name)}/revisions`,
      { org_id: t.org_id, workspace_id: t.workspace_id, limit: 1000 });
    const r = revs.items.find(x => x.template_id === t.id);
    return r ? r.revision : null;
  } catch {
    return null;
  }
}
