// The sign-in bar: an API key pasted once, kept in sessionStorage (this tab
// only, gone when it closes), sent as a bearer token; never put in a URL.

import { h, replace } from '../dom.js';

export function render(view, message, submit) {
  document.title = 'Sign in · Prompter';
  const input = h('input', {
    id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'pk_…', 'aria-describedby': 'api-key-help',
  });
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card signin', onsubmit: async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    replace(status, h('p', { class: 'muted' }, 'Checking the key…'));
    await submit(key);
  } },
  h('label', { for: 'api-key' }, 'API key'),
  h('div', { class: 'row' }, input, h('button', { type: 'submit' }, 'Sign in')),
  h('p', { id: 'api-key-help', class: 'muted' },
    'The key stays in this browser tab (sessionStorage) and is sent only to this server, as a bearer token. ',
    'Create one with ', h('code', {}, 'prompter keys create --org <org> --role read'), '.'),
  status);
  replace(view,
    h('h1', { tabindex: '-1' }, 'Sign in'),
    message ? h('div', { class: 'alert error', role: 'alert', id: 'signin-message' }, message) : null,
    form);
  input.focus();
}
