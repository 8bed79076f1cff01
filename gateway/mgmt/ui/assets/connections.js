// Connections and channels: tables with client properties, user, vhost,
// channels, prefetch and unacked; closing a connection with a reason.

import { h, clear, fmtNum, fmtTime, kv, debounce } from './dom.js';
import * as api from './api.js';
import { Table, actionForm, section } from './widgets.js';

const client = (c) => {
  const p = c.client_properties || {};
  return [p.product, p.version].filter(Boolean).join(' ') || (p.platform || '');
};

// TLS state as the management API reports it (RabbitMQ's field names).
const tlsLabel = (c) => (c.ssl ? (c.ssl_protocol || 'TLS').replace(/^tlsv/, 'TLS ') : 'no');
const tlsDetail = (c) => (c.ssl
  ? [tlsLabel(c), c.ssl_cipher, c.ssl_key_exchange && c.ssl_key_exchange !== 'any' ? c.ssl_key_exchange : '', c.ssl_hash].filter(Boolean).join(', ')
  : 'not encrypted');

export function connectionsView() {
  const filter = h('input', { id: 'connections-filter', type: 'search', placeholder: 'Filter by name, user or client', 'aria-label': 'Filter' });
  const count = h('span', { class: 'muted' });
  const detail = h('div', { id: 'connection-detail' });
  let selected = null;
  const table = new Table([
    { key: 'name', label: 'Name', cell: (c) => h('a', { href: '#/connections', class: 'conn-link', onclick: (e) => { e.preventDefault(); select(c.name); } },
      (c.client_properties && c.client_properties.connection_name) || c.name) },
    { key: 'user', label: 'User' },
    { key: 'vhost', label: 'Vhost' },
    { key: 'protocol', label: 'Protocol' },
    { key: 'client', label: 'Client', value: client },
    { key: 'peer', label: 'From', value: (c) => `${c.peer_host}:${c.peer_port ?? ''}` },
    { key: 'ssl', label: 'TLS', value: tlsLabel },
    { key: 'channels', label: 'Channels', num: true },
    { key: 'connected_at', label: 'Connected', value: (c) => c.connected_at || 0, cell: (c) => fmtTime(c.connected_at) },
  ], { sortKey: 'connected_at', reverse: true, empty: 'No connections.' });
  let rows = [];
  const apply = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((c) => !f || [c.name, c.user, client(c), (c.client_properties || {}).connection_name].some((x) => String(x || '').toLowerCase().includes(f)));
    count.textContent = `${shown.length} of ${rows.length} connections`;
    table.setRows(shown);
  };
  filter.addEventListener('input', debounce(apply, 120));

  async function select(name) {
    selected = name;
    detailShown = name;
    await showDetail();
    detail.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  async function showDetail() {
    if (!selected) return clear(detail);
    const c = rows.find((x) => x.name === selected);
    if (!c) {
      clear(detail, section('Connection', h('p', { class: 'muted' }, `Connection ${selected} is closed.`)));
      return;
    }
    const chans = await api.get(`/api/connections/${encodeURIComponent(c.name)}/channels`).catch(() => []);
    const chTable = channelTable();
    chTable.setRows(chans);
    const parts = [
      h('dl', { class: 'kv' },
        h('dt', null, 'Name'), h('dd', null, c.name),
        h('dt', null, 'User'), h('dd', null, c.user),
        h('dt', null, 'Vhost'), h('dd', null, c.vhost),
        h('dt', null, 'Protocol'), h('dd', null, c.protocol),
        h('dt', null, 'Peer'), h('dd', null, `${c.peer_host}:${c.peer_port ?? ''}`),
        h('dt', null, 'TLS'), h('dd', { id: 'connection-tls' }, tlsDetail(c)),
        h('dt', null, 'Authentication'), h('dd', null, c.auth_mechanism || ''),
        ...(c.peer_cert_subject ? [
          h('dt', null, 'Client certificate'), h('dd', { id: 'connection-peer-cert' }, c.peer_cert_subject),
          h('dt', null, 'Issued by'), h('dd', null, c.peer_cert_issuer || ''),
          h('dt', null, 'Valid'), h('dd', null, c.peer_cert_validity || ''),
        ] : []),
        h('dt', null, 'Connected'), h('dd', null, fmtTime(c.connected_at))),
      h('h3', null, 'Client properties'), kv(c.client_properties || {}),
      h('h3', null, 'Channels'), chTable.el,
    ];
    const me = api.current();
    if (api.isAdmin() || (api.canOperate() && me && me.user === c.user)) {
      const close = actionForm({
        id: 'close-connection',
        submit: 'Close connection',
        danger: true,
        fields: [{ name: 'reason', label: 'Reason sent to the client', value: 'Closed via management UI', wide: true }],
        async onSubmit(v) {
          await api.del(`/api/connections/${encodeURIComponent(c.name)}`, { headers: { 'X-Reason': v.reason } });
          selected = null;
          setTimeout(refresh, 300);
          return 'Connection closed.';
        },
      });
      parts.push(h('h3', null, 'Close'), close.el);
    }
    clear(detail, section('Connection ' + ((c.client_properties && c.client_properties.connection_name) || c.name), ...parts));
  }

  const el = h('div', { class: 'view connections' },
    h('h1', null, 'Connections'),
    h('div', { class: 'toolbar' }, filter, count),
    table.el,
    h('p', { class: 'muted' }, 'Select a connection for its client properties and channels, or to close it.'),
    detail);

  let detailShown = null;
  async function refresh() {
    rows = await api.get('/api/connections');
    apply();
    // Re-render the detail only when the selection changed or vanished,
    // so that a reason being typed is not wiped by the refresh.
    const alive = rows.some((x) => x.name === selected);
    if (selected !== detailShown || !alive) {
      detailShown = alive ? selected : null;
      await showDetail();
    }
  }
  return { el, refresh };
}

function channelTable() {
  return new Table([
    { key: 'name', label: 'Channel' },
    { key: 'user', label: 'User' },
    { key: 'vhost', label: 'Vhost' },
    { key: 'mode', label: 'Mode', value: (c) => [c.confirm ? 'confirm' : '', c.transactional ? 'tx' : ''].filter(Boolean).join(' ') || '–' },
    { key: 'prefetch_count', label: 'Prefetch', num: true, cell: (c) => (c.prefetch_count ? fmtNum(c.prefetch_count) : 'unlimited') },
    { key: 'messages_unacknowledged', label: 'Unacked', num: true, cell: (c) => fmtNum(c.messages_unacknowledged) },
    { key: 'consumer_count', label: 'Consumers', num: true },
    { key: 'state', label: 'State' },
  ], { empty: 'No channels.', cls: 'channels' });
}

export function channelsView() {
  const table = channelTable();
  const filter = h('input', { id: 'channels-filter', type: 'search', placeholder: 'Filter by name or user', 'aria-label': 'Filter' });
  const count = h('span', { class: 'muted' });
  let rows = [];
  const apply = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = rows.filter((c) => !f || [c.name, c.user].some((x) => String(x || '').toLowerCase().includes(f)));
    count.textContent = `${shown.length} of ${rows.length} channels`;
    table.setRows(shown);
  };
  filter.addEventListener('input', debounce(apply, 120));
  const el = h('div', { class: 'view channels' }, h('h1', null, 'Channels'), h('div', { class: 'toolbar' }, filter, count), table.el);
  return {
    el,
    async refresh() {
      rows = await api.get('/api/channels');
      apply();
    },
  };
}
