// The JSON API with the operator token: kept in sessionStorage only, sent as a bearer token.

const KEY = 'retail-sync.operator-token';
export const base = window.location.pathname.replace(/\/console\/?$/, '');

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.details = error.details || [];
  }
}

export const session = {
  token: () => window.sessionStorage.getItem(KEY),
  keep: (token) => window.sessionStorage.setItem(KEY, token),
  forget: () => window.sessionStorage.removeItem(KEY),
};

export function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== '') params.set(name, value);
  }
  const text = params.toString();
  return base + path + (text ? `?${text}` : '');
}

// `token` only at sign-in (the one being checked); otherwise the kept one. A 401 signs out.
export async function api(method, path, { query, body, token } = {}) {
  const headers = { Authorization: `Bearer ${token || session.token() || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url(path, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
  });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (response.status === 401 && !token) {
    session.forget();
    window.dispatchEvent(new CustomEvent('signed-out', { detail: 'Your token expired or was revoked: sign in again.' }));
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body) => api('POST', path, { body: body || {} });
