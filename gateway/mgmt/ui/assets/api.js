// The management API client: HTTP basic authentication against Warren's
// users, credentials kept in sessionStorage (a reload keeps the session,
// closing the tab ends it), and every failure turned into an ApiError
// with a sentence a person can read.
//
// Requests use credentials: 'omit'. The Authorization header is still
// sent (it is set explicitly), but the Fetch standard then returns a 401
// to the page instead of letting the browser pop up its own login dialog
// because of the WWW-Authenticate header.

const KEY = 'warren.session';

export class ApiError extends Error {
  constructor(status, error, reason) {
    super(reason || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.reason = reason;
  }
}

let session = load();
const listeners = new Set();

function load() {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    return v && v.auth ? v : null;
  } catch {
    return null;
  }
}

export function current() { return session; }

export function onLogout(fn) { listeners.add(fn); }

function basic(user, pass) {
  // btoa needs bytes: encode UTF-8 first so non-ASCII passwords work.
  const bytes = new TextEncoder().encode(`${user}:${pass}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

// login checks the credentials with /api/whoami and keeps the session.
export async function login(user, pass) {
  const auth = basic(user, pass);
  const me = await request('GET', '/api/whoami', undefined, { auth });
  const tags = Array.isArray(me.tags) ? me.tags : String(me.tags || '').split(',').filter(Boolean);
  session = { auth, user: me.name, tags };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function logout(reason) {
  session = null;
  sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(reason);
}

// refreshWho re-reads the user's tags (an administrator may have changed
// them) and logs out when the credentials no longer work.
export async function refreshWho() {
  if (!session) return null;
  const me = await request('GET', '/api/whoami');
  session.tags = Array.isArray(me.tags) ? me.tags : [];
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function hasTag(t) { return !!session && session.tags.includes(t); }
export function isAdmin() { return hasTag('administrator'); }
// seesAll: administrators and monitoring users see every vhost.
export function seesAll() { return isAdmin() || hasTag('monitoring'); }
// canOperate: may publish, purge, delete, bind, close (the server still
// checks permissions). monitoring alone is read-only.
export function canOperate() {
  return isAdmin() || hasTag('management') || hasTag('policymaker');
}

const STATUS_TEXT = {
  400: 'The request was not valid',
  401: 'Not authorised',
  403: 'Access refused',
  404: 'Not found',
  405: 'Not allowed here',
  409: 'Conflict',
  423: 'The resource is locked',
  500: 'Warren failed to handle the request',
  501: 'Not implemented',
  503: 'Warren is unavailable',
};

// request sends one API call. body: an object (sent as JSON) or undefined.
// opts.headers adds headers, opts.auth overrides the session.
export async function request(method, path, body, opts = {}) {
  const auth = opts.auth || (session && session.auth);
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `Cannot reach Warren (${e.message || e}). Is the broker running?`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    let reason = data && typeof data === 'object' ? (data.reason || data.error) : '';
    if (typeof reason !== 'string') reason = JSON.stringify(reason);
    if (!reason) reason = STATUS_TEXT[res.status] || `HTTP ${res.status}`;
    const err = new ApiError(res.status, data && data.error, reason);
    // A session whose password was changed or whose user was deleted:
    // back to the log-in form (but not for the log-in call itself).
    if (res.status === 401 && !opts.auth && session && path !== '/api/whoami' && /login refused|basic auth/i.test(reason)) {
      logout('Your session ended: ' + reason);
    }
    throw err;
  }
  return data;
}

export const get = (p) => request('GET', p);
export const put = (p, b) => request('PUT', p, b === undefined ? {} : b);
export const post = (p, b, opts) => request('POST', p, b === undefined ? {} : b, opts);
export const del = (p, opts) => request('DELETE', p, undefined, opts);

// errText turns anything thrown into a sentence.
export function errText(e) {
  if (e instanceof ApiError) {
    const what = STATUS_TEXT[e.status];
    if (e.status && what && !e.reason.toLowerCase().startsWith(what.toLowerCase())) return `${what}: ${e.reason}`;
    return e.reason;
  }
  return String(e && e.message ? e.message : e);
}
