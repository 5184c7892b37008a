// The console's entry point: session (key and caller), header (identity,
// workspace picker), and the router that maps /ui/... paths to pages.

import { h, replace, errorBox } from './dom.js';
import { ApiError, get, getKey, setKey, setUnauthorizedHandler, withQuery } from './api.js';
import * as signin from './pages/signin.js';
import * as prompts from './pages/prompts.js';
import * as prompt from './pages/prompt.js';
import * as compare from './pages/compare.js';
import * as template from './pages/template.js';
import * as results from './pages/results.js';
import * as drift from './pages/drift.js';
import * as batches from './pages/batches.js';

const SCOPE = 'prompter.scope';
const view = document.getElementById('view');
const session = document.getElementById('session');
const picker = document.getElementById('workspace-picker');
const nav = document.getElementById('nav');

/** What every page gets: the caller, the URL's query, the scope, navigation. */
export const ctx = {
  me: null,
  workspaces: [],
  get query() {
    return new URLSearchParams(location.search);
  },
  /** org_id/workspace_id from the URL, else the ones the key fixes, else
   *  the last workspace this tab looked at. */
  scope() {
    const q = this.query;
    const me = this.me || {};
    const urlOrg = q.get('org_id'), urlWs = q.get('workspace_id');
    if (urlOrg && urlWs) return { org_id: urlOrg, workspace_id: urlWs };
    if (me.org_id && me.workspace_id) return { org_id: me.org_id, workspace_id: me.workspace_id };
    let last = {};
    try { last = JSON.parse(sessionStorage.getItem(SCOPE) || '{}'); } catch { last = {}; }
    const fits = last.org_id && (!me.org_id || me.org_id === last.org_id);
    return {
      org_id: urlOrg || me.org_id || (fits ? last.org_id : null),
      workspace_id: urlWs || (fits ? last.workspace_id : null) || null,
    };
  },
  /** Remembers the workspace a page shows (nav links keep it). */
  remember(scope) {
    if (scope.org_id && scope.workspace_id) {
      sessionStorage.setItem(SCOPE, JSON.stringify({ org_id: scope.org_id, workspace_id: scope.workspace_id }));
      if (this.me) renderChrome();
    }
  },
  /** `path` with the current scope in the query (plus `extra`). */
  scoped(path, extra = {}) {
    const s = this.scope();
    return withQuery(path, { org_id: s.org_id, workspace_id: s.workspace_id, ...extra });
  },
  navigate(url, { replace: rep = false } = {}) {
    if (rep) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    route();
  },
  /** Renders a failed request in the view (a 401 is handled by the sign-in bar). */
  fail(err, where = view) {
    if (err instanceof ApiError && err.status === 401) return;
    where.appendChild(errorBox(err));
  },
};

const ROUTES = [
  [/^\/ui\/?$/, () => ctx.navigate(ctx.scoped('/ui/prompts'), { replace: true })],
  [/^\/ui\/prompts\/?$/, () => prompts.render(view, ctx)],
  [/^\/ui\/prompts\/([^/]+)$/, (m) => prompt.render(view, ctx, decodeURIComponent(m[1]))],
  [/^\/ui\/templates\/([^/]+)\/results$/, (m) => results.list(view, ctx, m[1])],
  [/^\/ui\/templates\/([^/]+)$/, (m) => template.render(view, ctx, m[1])],
  [/^\/ui\/results\/([^/]+)$/, (m) => results.show(view, ctx, m[1])],
  [/^\/ui\/compare\/?$/, () => compare.render(view, ctx)],
  [/^\/ui\/drift\/?$/, () => drift.render(view, ctx)],
  [/^\/ui\/batches\/?$/, () => batches.list(view, ctx)],
  [/^\/ui\/batches\/([^/]+)$/, (m) => batches.show(view, ctx, m[1])],
];

let routing = 0;

/** Renders the page of the current URL. */
export async function route() {
  const mine = ++routing;
  if (!ctx.me) return;
  const q = ctx.query;
  if (q.get('org_id') && q.get('workspace_id')) ctx.remember({ org_id: q.get('org_id'), workspace_id: q.get('workspace_id') });
  renderChrome();
  const path = location.pathname;
  replace(view, h('p', { class: 'muted', 'aria-live': 'polite' }, 'Loading…'));
  for (const [re, page] of ROUTES) {
    const m = path.match(re);
    if (m) {
      try {
        await page(m);
      } catch (err) {
        if (mine === routing) ctx.fail(err);
      }
      if (mine === routing) focusHeading();
      return;
    }
  }
  replace(view, h('h1', { tabindex: '-1' }, 'Not found'),
    h('p', {}, 'No console page has this address. ', h('a', { href: '/ui/', 'data-nav': '' }, 'Go to the prompts.')));
  focusHeading();
}

function focusHeading() {
  const h1 = view.querySelector('h1');
  if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
}

/** Header: who is signed in, the sign-out button, the workspace picker, nav links. */
function renderChrome() {
  const me = ctx.me;
  const s = ctx.scope();
  const scopeQuery = { org_id: s.org_id, workspace_id: s.workspace_id };
  replace(nav,
    h('a', { href: withQuery('/ui/prompts', scopeQuery), 'data-nav': '', class: navClass('/ui/prompts') }, 'Prompts'),
    h('a', { href: withQuery('/ui/drift', scopeQuery), 'data-nav': '', class: navClass('/ui/drift') }, 'Drift'),
    h('a', { href: withQuery('/ui/batches', scopeQuery), 'data-nav': '', class: navClass('/ui/batches') }, 'Batches'),
    h('a', { href: '/ui/compare', 'data-nav': '', class: navClass('/ui/compare') }, 'Compare'));
  if (me.auth === 'off') {
    replace(session, h('span', { class: 'muted' }, 'Auth off (loopback): no key needed'));
  } else {
    const who = [me.org_id || 'every org', me.workspace_id ? ` / ${me.workspace_id}` : '', ` · ${me.role}`].join('');
    replace(session,
      h('span', { class: 'who', title: `key ${me.key_prefix || ''}` }, who),
      h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign out'));
  }
  renderPicker();
}

function navClass(prefix) {
  return location.pathname.startsWith(prefix) ? 'active' : null;
}

function renderPicker() {
  const me = ctx.me;
  const s = ctx.scope();
  if (me.workspace_id) {
    replace(picker, h('span', { class: 'muted' }, 'Workspace '), h('strong', {}, `${me.org_id} / ${me.workspace_id}`));
    return;
  }
  const current = s.org_id && s.workspace_id ? `${s.org_id}\u0000${s.workspace_id}` : '';
  const options = ctx.workspaces.map(w =>
    h('option', { value: `${w.org_id}\u0000${w.workspace_id}`, selected: `${w.org_id}\u0000${w.workspace_id}` === current },
      `${w.org_id} / ${w.workspace_id}`));
  if (current && !ctx.workspaces.some(w => `${w.org_id}\u0000${w.workspace_id}` === current)) {
    options.unshift(h('option', { value: current, selected: true }, `${s.org_id} / ${s.workspace_id}`));
  }
  const select = h('select', { id: 'workspace', onchange: (e) => {
    const [org_id, workspace_id] = e.target.value.split('\u0000');
    const page = ['/ui/drift', '/ui/batches'].find(p => location.pathname.startsWith(p)) || '/ui/prompts';
    ctx.navigate(withQuery(page, { org_id, workspace_id }));
  } },
  h('option', { value: '', disabled: true, selected: !current }, ctx.workspaces.length ? 'Choose…' : 'No workspace holds templates'),
  options);
  replace(picker, h('label', { for: 'workspace' }, 'Workspace'), select);
}

/** Loads the caller and its workspaces; false when a sign-in is needed. */
async function loadSession() {
  try {
    ctx.me = await get('/api/me');
  } catch (err) {
    ctx.me = null;
    if (!(err instanceof ApiError && err.status === 401)) {
      replace(view, h('h1', { tabindex: '-1' }, 'The server cannot be used'), errorBox(err));
    }
    return false;
  }
  ctx.workspaces = [];
  if (!ctx.me.workspace_id) {
    try {
      const page = await get('/api/workspaces', { org_id: ctx.me.org_id, limit: 1000 });
      ctx.workspaces = page.items;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return false;
      ctx.workspaces = [];
    }
  }
  return true;
}

function signOut() {
  setKey(null);
  sessionStorage.removeItem(SCOPE);
  ctx.me = null;
  showSignIn('Signed out.');
}

/** The sign-in bar, with the server's message (a 401's) when there is one. */
function showSignIn(message) {
  ctx.me = null;
  routing++;
  replace(nav);
  replace(picker);
  replace(session);
  signin.render(view, message, async (key) => {
    setKey(key);
    return start();
  });
}

setUnauthorizedHandler((err) => {
  const hadKey = !!getKey();
  setKey(null);
  showSignIn(hadKey ? `The server refused the key: ${err.message}` : null);
});

/** Starts (again): session, then the page. */
async function start() {
  if (!(await loadSession())) return false;
  await route();
  return true;
}

document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  ctx.navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => route());

start();
