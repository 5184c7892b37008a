// Batches of a workspace, newest first, with their progress; one batch:
// counters that update while it runs (polled every second), and its items,
// each linked to its result or showing its error.

import { h, replace, link, table, facts, time, short } from '../dom.js';
import { get, withQuery } from '../api.js';
import { chooseWorkspace } from './prompts.js';

const PAGE = 50;
const POLL_MS = 1000;
const RUNNING = new Set(['queued', 'running']);

/** A progress bar: items ended (done + failed + cancelled) of the total. */
export function progress(b, attrs = {}) {
  const ended = b.done + b.failed + b.cancelled;
  const parts = [`${ended} of ${b.total}`];
  if (b.failed) parts.push(`${b.failed} failed`);
  if (b.cancelled) parts.push(`${b.cancelled} cancelled`);
  const text = parts.join(' · ');
  return h('span', { class: 'progress', ...attrs },
    h('progress', { max: String(Math.max(b.total, 1)), value: String(ended), 'aria-label': `Progress: ${text}` }),
    h('span', { class: 'progress-text' }, text));
}

/** A batch status as a chip (warn for failures and cancels). */
function status(s) {
  const cls = s === 'done' ? 'chip ok' : s === 'done_with_failures' || s === 'cancelled' || s === 'failed' ? 'chip warn' : 'chip';
  return h('span', { class: `${cls} status` }, s.replace(/_/g, ' '));
}

function what(b) {
  const name = b.prompt || b.template_id.slice(0, 8);
  const rev = b.revision ? ` r${b.revision}` : '';
  return `${name}${rev}${b.label ? ` (${b.label})` : ''}`;
}

export async function list(view, ctx) {
  document.title = 'Batches · Prompter';
  const s = ctx.scope();
  if (!s.org_id || !s.workspace_id) return chooseWorkspace(view, ctx, '/ui/batches', 'Batches');
  const cursor = ctx.query.get('cursor') || '';
  const page = await get('/api/batches', { org_id: s.org_id, workspace_id: s.workspace_id, cursor, limit: PAGE });
  const items = page.items;
  const rows = items.map(b => h('tr', {},
    h('td', {}, link(ctx.scoped(`/ui/batches/${b.id}`), what(b), { class: 'batch-link' })),
    h('td', {}, status(b.status)),
    h('td', {}, progress(b)),
    h('td', {}, time(b.created_at))));
  replace(view,
    h('h1', { tabindex: '-1' }, 'Batches'),
    h('p', { class: 'muted' }, `${s.org_id} / ${s.workspace_id} · a batch runs a prompt once per country and repeat.`),
    items.length
      ? table('Batches, newest first', ['Prompt', 'Status', 'Progress', 'Created'], rows, { id: 'batches' })
      : h('p', { class: 'empty' }, 'No batches in this workspace on this page.'),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? link(ctx.scoped('/ui/batches'), '← First page') : null,
      page.next_cursor ? link(ctx.scoped('/ui/batches', { cursor: page.next_cursor }), 'Next page →', { rel: 'next' }) : null));
}

function itemRows(b) {
  return b.items.map(i => h('tr', { class: `item-${i.status}` },
    h('td', {}, i.country),
    h('td', { class: 'num' }, String(i.repeat)),
    h('td', {}, status(i.status)),
    h('td', {}, i.result_id ? link(`/ui/results/${i.result_id}`, `…${i.result_id.slice(-8)}`, { class: 'mono', 'aria-label': `Result of ${i.country} repeat ${i.repeat}` }) : '—'),
    h('td', { class: 'error' }, i.error ? [h('strong', {}, i.error.code), ' ', i.error.message] : '—')));
}

export async function show(view, ctx, id) {
  const path = location.pathname;
  let b = await get(`/api/batches/${encodeURIComponent(id)}`);
  document.title = `Batch …${id.slice(-8)} · Prompter`;
  ctx.remember(b);
  const state = h('section', { class: 'card', id: 'batch-state', 'aria-live': 'polite' });
  const items = h('section', { 'aria-labelledby': 'h-items' });
  const draw = () => {
    replace(state, facts([
      ['Status', status(b.status)],
      ['Progress', progress(b, { id: 'batch-progress' })],
      ['Done', String(b.done)],
      ['Failed', String(b.failed)],
      ['Created', time(b.created_at)],
      ['Finished', b.finished_at ? time(b.finished_at) : '—'],
    ]));
    replace(items,
      h('h2', { id: 'h-items' }, `Items (${b.items.length})`),
      table('Items of the batch', ['Country', ['Repeat', 'num'], 'Status', 'Result', 'Error'], itemRows(b), { id: 'items' }));
  };
  draw();
  replace(view,
    h('p', { class: 'crumbs' }, link(ctx.scoped('/ui/batches'), 'Batches'), ' /'),
    h('h1', { tabindex: '-1' }, `Batch ${what(b)}`),
    h('section', { class: 'card' }, facts([
      ['Batch id', h('code', {}, b.id)],
      ['Template', link(`/ui/templates/${b.template_id}`, b.prompt || b.template_id)],
      ['Results', link(withQuery(`/ui/templates/${b.template_id}/results`, { batch_id: b.id }), 'This batch’s results →')],
      ['Schedule', b.schedule_id ? short(b.schedule_id) : '—'],
    ])),
    state,
    items);
  // While it runs: read it again every second, as long as this page shows
  // (not awaited: the router's focus and the page are ready at once).
  const here = () => location.pathname === path && view.contains(state);
  const poll = async () => {
    let last = JSON.stringify(b);
    while (RUNNING.has(b.status)) {
      await new Promise(r => setTimeout(r, POLL_MS));
      if (!here()) return;
      const next = await get(`/api/batches/${encodeURIComponent(id)}`);
      if (!here()) return;
      b = next;
      const now = JSON.stringify(b);
      if (now !== last) { last = now; draw(); }
    }
  };
  poll().catch(err => { if (here()) ctx.fail(err); });
}
