// One prompt: revisions newest first with their labels, moving a label
// (choose the revision, confirm; the variable-contract warning offers a
// force that says what it does), and each label's history.

import { h, replace, link, table, chip, time, short, errorBox } from '../dom.js';
import { api, get, ApiError } from '../api.js';

export async function render(view, ctx, name, notice) {
  document.title = `${name} · Prompter`;
  const s = ctx.scope();
  const base = `/api/prompts/${encodeURIComponent(name)}`;
  const revs = (await get(`${base}/revisions`, { ...s, limit: 200 })).items;
  const labels = {};
  for (const r of revs) for (const l of r.labels) labels[l] = r.revision;
  const labelNames = Object.keys(labels).sort();
  const histories = await Promise.all(labelNames.map(l =>
    get(`${base}/labels/${encodeURIComponent(l)}/history`, { ...s, limit: 20 }).then(p => p.items)));

  // Revisions, with two picked for comparison.
  const picked = new Set(revs.filter(r => !r.deleted).slice(0, 2).map(r => r.template_id));
  const compareBtn = h('button', { type: 'button', id: 'compare-selected', onclick: () => {
    const [a, b] = revs.filter(r => picked.has(r.template_id));
    // Older on the left, newer on the right.
    ctx.navigate(`/ui/compare?left=${b.template_id}&right=${a.template_id}`);
  } }, 'Compare selected');
  const syncBtn = () => { compareBtn.disabled = picked.size !== 2; };
  syncBtn();
  const rows = revs.map(r => h('tr', { class: r.deleted ? 'deleted' : null },
    h('td', {}, h('input', {
      type: 'checkbox', id: `pick-${r.revision}`, checked: picked.has(r.template_id),
      'aria-label': `Select revision ${r.revision} for comparison`,
      onchange: (e) => { e.target.checked ? picked.add(r.template_id) : picked.delete(r.template_id); syncBtn(); },
    })),
    h('td', {}, link(`/ui/templates/${r.template_id}`, `r${r.revision}`)),
    h('td', {}, time(r.created_at)),
    h('td', { class: 'wide-only' }, short(r.config_hash)),
    h('td', {}, r.labels.map(l => chip(l, { class: 'chip label' })), r.deleted ? chip('deleted', { class: 'chip warn' }) : null)));

  const canWrite = ctx.me.role !== 'read';
  replace(view,
    h('p', { class: 'crumbs' }, link(ctx.scoped('/ui/prompts'), 'Prompts'), ' / '),
    h('h1', { tabindex: '-1', class: 'prompt-title' }, name),
    h('p', { class: 'muted' }, `${s.org_id} / ${s.workspace_id} · ${revs.length} revision${revs.length === 1 ? '' : 's'}`),
    notice ? h('div', { class: 'alert ok', role: 'status' }, notice) : null,
    h('section', { 'aria-labelledby': 'h-revisions' },
      h('h2', { id: 'h-revisions' }, 'Revisions'),
      table('Revisions, newest first', ['Pick', 'Revision', 'Created', ['Config hash', 'wide-only'], 'Labels'], rows, { id: 'revisions' }),
      h('div', { class: 'row' }, compareBtn, h('span', { class: 'muted' }, 'Pick two revisions to compare them.'))),
    h('section', { 'aria-labelledby': 'h-move' },
      h('h2', { id: 'h-move' }, 'Move a label'),
      canWrite ? moveForm(ctx, name, base, s, revs, labels, labelNames)
        : h('p', { class: 'muted' }, 'Moving labels needs a write key (this one is read-only).')),
    h('section', { 'aria-labelledby': 'h-history' },
      h('h2', { id: 'h-history' }, 'Label history'),
      labelNames.length ? labelNames.map((l, i) => h('div', { class: 'history' },
        h('h3', {}, chip(l, { class: 'chip label' }), ` now at r${labels[l]}`),
        table(`History of ${l}`, ['When', 'From', 'To', 'By'], histories[i].map(e => h('tr', {},
          h('td', {}, time(e.moved_at)),
          h('td', {}, e.previous_revision === null ? 'new' : `r${e.previous_revision}`),
          h('td', {}, e.revision === null ? 'removed' : `r${e.revision}`),
          h('td', {}, e.moved_by ? h('code', {}, e.moved_by) : '—')))))) : h('p', { class: 'muted' }, 'No labels yet.')));
}

function moveForm(ctx, name, base, scope, revs, labels, labelNames) {
  const active = revs.filter(r => !r.deleted);
  const labelInput = h('input', { id: 'move-label', name: 'label', list: 'label-names', required: true,
    value: labelNames.includes('production') ? 'production' : (labelNames[0] || ''), autocomplete: 'off' });
  const revSelect = h('select', { id: 'move-revision', name: 'revision', required: true },
    active.map(r => h('option', { value: String(r.revision) }, `r${r.revision}${r.labels.length ? ` (${r.labels.join(', ')})` : ''}`)));
  const panel = h('div', { id: 'move-panel', 'aria-live': 'polite', onkeydown: (e) => {
    // Escape cancels a pending confirmation or force choice.
    if (e.key === 'Escape' && panel.firstChild) { replace(panel); revSelect.focus(); }
  } });
  const form = h('form', { class: 'card move', onsubmit: (e) => {
    e.preventDefault();
    const label = labelInput.value.trim();
    const revision = Number(revSelect.value);
    if (!label || !revision) return;
    confirmMove(label, revision);
  } },
  h('datalist', { id: 'label-names' }, labelNames.map(l => h('option', { value: l }))),
  h('div', { class: 'fields' },
    h('div', {}, h('label', { for: 'move-label' }, 'Label'), labelInput),
    h('div', {}, h('label', { for: 'move-revision' }, 'To revision'), revSelect),
    h('div', { class: 'end' }, h('button', { type: 'submit' }, 'Move label…'))),
  panel);

  const current = (label) => (label in labels ? labels[label] : null);

  function confirmMove(label, revision) {
    const from = current(label);
    const yes = h('button', { type: 'button', id: 'confirm-move', onclick: () => send(label, revision, false) }, 'Confirm move');
    replace(panel, h('div', { class: 'alert confirm', role: 'alertdialog', 'aria-labelledby': 'confirm-text' },
      h('p', { id: 'confirm-text' }, from === null
        ? `Create the label “${label}” at r${revision}?`
        : `Move “${label}” from r${from} to r${revision}? Callers fetching “${label}” get r${revision} from now on.`),
      h('div', { class: 'row' }, yes, h('button', { type: 'button', class: 'secondary', onclick: () => replace(panel) }, 'Cancel'))));
    yes.focus();
  }

  async function send(label, revision, force) {
    const from = current(label);
    try {
      await api('PUT', `${base}/labels/${encodeURIComponent(label)}`, {
        query: scope, body: { revision, expected_revision: from === null ? 0 : from, force },
      });
      await render(document.getElementById('view'), ctx, name,
        `“${label}” now points to r${revision}${force ? ' (forced past the variable check)' : ''}.`);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'VARIABLE_CONTRACT_CHANGED') {
        const added = err.detail.added || [];
        const force = h('button', { type: 'button', id: 'force-move', class: 'danger', onclick: () => send(label, revision, true) },
          `Force: move “${label}” to r${revision} anyway`);
        replace(panel, h('div', { class: 'alert warn', role: 'alert', id: 'contract-warning' },
          h('p', {}, h('strong', {}, 'The variable contract changes. '),
            `r${revision} uses ${added.length === 1 ? 'a variable' : 'variables'} that r${from} does not:`),
          h('ul', { class: 'vars' }, added.map(v => h('li', {}, h('code', {}, v)))),
          h('p', {}, `Forcing moves the label now: callers that render or run “${label}” without sending `,
            added.map((v, i) => [i ? ', ' : '', h('code', {}, v)]),
            ' will get 422 MISSING_VARIABLES until they send ', added.length === 1 ? 'it' : 'them', '.'),
          h('div', { class: 'row' }, force, h('button', { type: 'button', class: 'secondary', onclick: () => replace(panel) }, 'Cancel'))));
        force.focus();
      } else if (err instanceof ApiError && err.code === 'LABEL_CONFLICT') {
        await render(document.getElementById('view'), ctx, name);
        document.getElementById('move-panel').appendChild(errorBox(new ApiError(409, err.code,
          `Someone else moved “${label}” meanwhile (${err.message}); the page shows where it is now.`)));
      } else if (!(err instanceof ApiError && err.status === 401)) {
        replace(panel, errorBox(err));
      }
    }
  }
  return form;
}
