// Warren's management UI: the shell (log-in, navigation, hash router,
// polling) and the views in their own modules. It uses only the public
// management API under /api/ (and /v1/route for the routing dry run).

import { h, clear } from './dom.js';
import * as api from './api.js';
import { overview, REFRESH_MS } from './state.js';
import { msgLine } from './widgets.js';
import { overviewView } from './overview.js';
import { queuesView, queueView } from './queues.js';
import { exchangesView, exchangeView } from './exchanges.js';
import { connectionsView, channelsView } from './connections.js';
import { adminView } from './admin.js';
import { shovelsView } from './shovels.js';

const app = document.getElementById('app');

const routes = [
  { re: /^\/?$/, nav: 'overview', view: overviewView },
  { re: /^\/queues\/?$/, nav: 'queues', view: queuesView },
  { re: /^\/queues\/([^/]+)\/(.+)$/, nav: 'queues', view: queueView },
  { re: /^\/exchanges\/?$/, nav: 'exchanges', view: exchangesView },
  { re: /^\/exchanges\/([^/]+)\/(.+)$/, nav: 'exchanges', view: exchangeView },
  { re: /^\/connections\/?$/, nav: 'connections', view: connectionsView },
  { re: /^\/channels\/?$/, nav: 'channels', view: channelsView },
  { re: /^\/shovels\/?$/, nav: 'shovels', view: shovelsView },
  { re: /^\/admin\/?$/, nav: 'admin', view: adminView, admin: true },
];

const NAV = [
  ['overview', 'Overview', '#/'],
  ['connections', 'Connections', '#/connections'],
  ['channels', 'Channels', '#/channels'],
  ['exchanges', 'Exchanges', '#/exchanges'],
  ['queues', 'Queues', '#/queues'],
  ['shovels', 'Shovels', '#/shovels'],
  ['admin', 'Admin', '#/admin'],
];

let current = null; // {view, route}
let timer = null;
let shell = null;

export function go(hash) { location.hash = hash; }

function showLogin(notice) {
  stop();
  shell = null;
  const msg = msgLine();
  if (notice) msg.err(notice);
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'login-pass', name: 'password', type: 'password', autocomplete: 'current-password' });
  const btn = h('button', { type: 'submit', id: 'login-submit', class: 'primary' }, 'Log in');
  const form = h('form', { id: 'login', class: 'login card' },
    h('div', { class: 'brand big' }, h('span', { class: 'logo' }, 'W'), 'Warren'),
    h('p', { class: 'muted' }, 'Log in with a Warren user that has a management, monitoring or administrator tag.'),
    h('label', { class: 'field', for: 'login-user' }, h('span', null, 'Username'), user),
    h('label', { class: 'field', for: 'login-pass' }, h('span', null, 'Password'), pass),
    h('div', { class: 'actions' }, btn),
    msg.el);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    btn.disabled = true;
    msg.info('Checking…');
    try {
      await api.login(user.value.trim(), pass.value);
      msg.clear();
      start();
    } catch (err) {
      if (err.status === 401 && /not management user/i.test(err.reason)) {
        msg.err('This user may not use the management UI: it needs the management, monitoring or administrator tag.');
      } else {
        msg.err(err.status === 401 ? 'Login failed: ' + err.reason : api.errText(err));
      }
    } finally {
      btn.disabled = false;
    }
  });
  clear(app, h('main', { class: 'login-page' }, form));
  document.title = 'Log in · Warren';
  user.focus();
}

function buildShell() {
  const s = api.current();
  const navList = h('ul', { class: 'nav' }, NAV.filter(([k]) => (k !== 'admin' || api.isAdmin()) && (k !== 'shovels' || api.seesAll() || api.hasTag('policymaker'))).map(([k, label, href]) =>
    h('li', null, h('a', { href, id: 'nav-' + k, dataset: { nav: k } }, label))));
  const logout = h('button', { type: 'button', id: 'logout', class: 'small' }, 'Log out');
  logout.addEventListener('click', () => api.logout());
  const banner = h('div', { class: 'banner hidden', id: 'banner', role: 'alert' });
  const main = h('main', { id: 'main' });
  const header = h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'logo' }, 'W'), 'Warren'),
    h('nav', { 'aria-label': 'Main' }, navList),
    h('div', { class: 'who' },
      h('span', { id: 'who-user', title: 'tags: ' + (s.tags.join(', ') || 'none') }, s.user),
      h('span', { class: 'tags' }, s.tags.length ? s.tags.join(', ') : 'no tags'),
      logout));
  clear(app, header, banner, main,
    h('footer', { class: 'foot' }, h('span', { id: 'foot-node' }, ''), ' · ',
      h('a', { href: '/docs' }, 'API docs'), ' · ', h('a', { href: '/metrics' }, 'metrics')));
  shell = { main, navList, banner };
}

export function setBanner(text) {
  if (!shell) return;
  shell.banner.textContent = text || '';
  shell.banner.classList.toggle('hidden', !text);
}

function matchRoute() {
  const path = location.hash.replace(/^#/, '') || '/';
  for (const r of routes) {
    const m = path.match(r.re);
    if (!m) continue;
    try {
      return { r, params: m.slice(1).map((x) => decodeURIComponent(x)), path };
    } catch {
      return null; // malformed percent-encoding: "page not found"
    }
  }
  return null;
}

async function route() {
  if (!api.current()) return showLogin();
  if (!shell) buildShell();
  if (current && current.view.destroy) current.view.destroy();
  current = null;
  const m = matchRoute();
  for (const a of shell.navList.querySelectorAll('a')) a.classList.toggle('active', !!m && a.dataset.nav === m.r.nav);
  if (!m) {
    clear(shell.main, h('section', { class: 'card' }, h('h1', null, 'Page not found'),
      h('p', null, 'There is no page at ', h('code', null, location.hash), '. ', h('a', { href: '#/' }, 'Back to the overview'), '.')));
    return;
  }
  if (m.r.admin && !api.isAdmin()) {
    clear(shell.main, h('section', { class: 'card' }, h('h1', null, 'Administrators only'),
      h('p', null, 'Your user has no administrator tag.')));
    return;
  }
  const view = m.r.view({ params: m.params, go });
  current = { view, route: m };
  clear(shell.main, view.el);
  window.scrollTo(0, 0);
  await tick(true);
}

// tick samples the overview and refreshes the open view.
async function tick(viewOnly) {
  if (!api.current()) return;
  if (!viewOnly || overview.history.samples.length === 0) await sampleOverview();
  const cur = current;
  if (cur && cur.view.refresh) {
    try {
      await cur.view.refresh();
      if (!overview.error) setBanner('');
    } catch (err) {
      if (cur === current) setBanner('Could not refresh this page: ' + api.errText(err));
    }
  }
}

async function sampleOverview() {
  try {
    const o = await api.get('/api/overview');
    overview.last = o;
    overview.error = null;
    const ms = o.message_stats || {};
    const qt = o.queue_totals || {};
    const r = (k) => (ms[k + '_details'] && ms[k + '_details'].rate) || 0;
    overview.history.add({
      publish: r('publish'), deliver: r('deliver_get'), ack: r('ack'), confirm: r('confirm'),
      redeliver: r('redeliver'), unroutable: r('return_unroutable') + r('drop_unroutable'),
      ready: qt.messages_ready || 0, unacked: qt.messages_unacknowledged || 0,
    });
    const foot = document.getElementById('foot-node');
    if (foot) foot.textContent = `${o.product_name || 'Warren'} ${o.product_version || ''} on ${o.node || '?'}`;
  } catch (err) {
    overview.error = err;
    setBanner('Cannot read the overview: ' + api.errText(err));
  }
}

function start() {
  stop();
  buildShell();
  route();
  timer = setInterval(() => { if (!document.hidden) tick(false); }, REFRESH_MS);
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
  if (current && current.view.destroy) current.view.destroy();
  current = null;
}

api.onLogout((reason) => {
  overview.reset();
  showLogin(reason);
});

window.addEventListener('hashchange', () => { if (api.current()) route(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden && api.current()) tick(false); });

// Boot: a kept session is checked once (its user may have been deleted or
// retagged meanwhile).
(async () => {
  if (!api.current()) return showLogin();
  try {
    await api.refreshWho();
    start();
  } catch (err) {
    api.logout(err.status === 401 ? 'Your session ended: ' + err.reason : api.errText(err));
  }
})();
