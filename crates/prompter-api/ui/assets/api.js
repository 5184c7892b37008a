// The JSON API client: the key (from sessionStorage) as a bearer token,
// errors as ApiError with the server's code and message.

const KEY = 'prompter.key';

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** An error answer: HTTP status, the stable code, the message, the body. */
export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }
}

/** The error's code and message from the envelope (`{"detail": …}`). */
function parseError(status, body) {
  const d = body && body.detail;
  if (d && !Array.isArray(d) && typeof d === 'object') {
    return new ApiError(status, d.code || String(status), d.message || `HTTP ${status}`, d);
  }
  if (Array.isArray(d)) {
    const msg = d.map(e => e.msg).join('; ');
    return new ApiError(status, (body && body.code) || 'VALIDATION_FAILED', msg, { fields: d });
  }
  return new ApiError(status, String(status), `HTTP ${status}`, {});
}

/** Builds `path?query` from an object (null/empty values left out). */
export function withQuery(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

let onUnauthorized = () => {};

/** Who handles a 401 (the app: back to the sign-in bar). */
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

/** Calls the API; resolves to the parsed body (null for 204). A 401 also
 *  goes to the unauthorized handler. */
export async function api(method, path, { query, body } = {}) {
  const headers = { Accept: 'application/json' };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(withQuery(path, query), init);
  } catch (e) {
    throw new ApiError(0, 'NETWORK', `the server cannot be reached (${e.message})`, {});
  }
  if (res.status === 204) return null;
  let parsed = null;
  const text = await res.text();
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = parseError(res.status, parsed);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return parsed;
}

export const get = (path, query) => api('GET', path, { query });
