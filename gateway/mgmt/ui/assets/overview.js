// Overview: the node, counts, and live charts of message rates and queue
// depth (sampled from /api/overview by the shell every few seconds); in a
// cluster, every node and its health (docs/cluster.md).

import { h, clear, fmtNum, fmtBytes, fmtDuration, fmtRate, enc, rate } from './dom.js';
import * as api from './api.js';
import { LineChart } from './chart.js';
import { overview } from './state.js';
import { Table, section } from './widgets.js';

export function overviewView() {
  const tiles = h('div', { class: 'tiles', id: 'overview-tiles' });
  const node = h('dl', { class: 'kv node', id: 'overview-node' });
  const rates = new LineChart({
    title: 'Message rates',
    history: overview.history,
    unit: 'rate',
    series: [
      { name: 'publish', label: 'Publish', cls: 's1' },
      { name: 'deliver', label: 'Deliver / get', cls: 's2' },
      { name: 'ack', label: 'Ack', cls: 's3' },
      { name: 'confirm', label: 'Confirm', cls: 's4' },
    ],
  });
  const depth = new LineChart({
    title: 'Queued messages',
    history: overview.history,
    unit: 'count',
    series: [
      { name: 'ready', label: 'Ready', cls: 's5' },
      { name: 'unacked', label: 'Unacked', cls: 's6' },
    ],
  });
  const top = new Table([
    { key: 'name', label: 'Queue', cell: (q) => h('a', { href: `#/queues/${enc(q.vhost)}/${enc(q.name)}` }, q.name) },
    { key: 'vhost', label: 'Vhost' },
    { key: 'messages', label: 'Total', num: true, cell: (q) => fmtNum(q.messages) },
    { key: 'publish', label: 'Publish', num: true, value: (q) => rate(q.message_stats, 'publish'), cell: (q) => fmtRate(rate(q.message_stats, 'publish')) },
    { key: 'consumers', label: 'Consumers', num: true },
  ], { sortKey: 'messages', reverse: true, empty: 'No queues yet.' });
  const yes = (b) => (b ? 'yes' : 'no');
  const nodesTable = new Table([
    { key: 'name', label: 'Node' },
    { key: 'running', label: 'Running', cell: (n) => h('span', { class: n.running ? 'badge' : 'badge warn' }, yes(n.running)) },
    { key: 'route_connected', label: 'Route', cell: (n) => yes(n.route_connected) },
    { key: 'meta', label: 'JetStream meta', value: (n) => metaState(n), cell: (n) => metaState(n) },
    { key: 'mem_used', label: 'Memory', num: true, cell: (n) => (n.running ? fmtBytes(n.mem_used) : '–') },
    { key: 'uptime', label: 'Uptime', num: true, cell: (n) => (n.running ? fmtDuration(n.uptime) : '–') },
  ], { sortKey: 'name', cls: 'nodes' });
  const nodesSection = section('Cluster nodes', nodesTable.el);
  nodesSection.id = 'overview-nodes';
  nodesSection.hidden = true;

  const el = h('div', { class: 'view overview' },
    h('h1', null, 'Overview'),
    tiles,
    h('div', { class: 'charts' }, rates.el, depth.el),
    h('div', { class: 'grid2' },
      section('Node', node),
      section('Deepest queues', top.el, h('p', null, h('a', { href: '#/queues' }, 'All queues →')))),
    nodesSection);

  let uptime = null;

  async function refresh() {
    const o = overview.last;
    rates.draw();
    depth.draw();
    if (!o) return;
    if (api.seesAll()) {
      try {
        const nodes = (await api.get('/api/nodes')) || [];
        uptime = nodes.find((n) => n.name === o.node) || null;
        // Cluster nodes carry route_connected; a single node has no table.
        nodesSection.hidden = !nodes.some((n) => 'route_connected' in n);
        if (!nodesSection.hidden) nodesTable.setRows(nodes);
      } catch { uptime = null; }
    }
    const ot = o.object_totals || {};
    const qt = o.queue_totals || {};
    const t = (label, v, id) => h('div', { class: 'tile', id }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, v));
    clear(tiles,
      t('Connections', fmtNum(ot.connections), 'tile-connections'),
      t('Channels', fmtNum(ot.channels), 'tile-channels'),
      t('Exchanges', fmtNum(ot.exchanges), 'tile-exchanges'),
      t('Queues', fmtNum(ot.queues), 'tile-queues'),
      t('Consumers', fmtNum(ot.consumers), 'tile-consumers'),
      t('Ready', fmtNum(qt.messages_ready), 'tile-ready'),
      t('Unacked', fmtNum(qt.messages_unacknowledged), 'tile-unacked'),
      t('Total', fmtNum(qt.messages), 'tile-messages'));
    const rows = [
      ['Node', o.node],
      ['Version', `${o.product_name || 'Warren'} ${o.product_version || ''}`],
      ['Management API', `RabbitMQ ${o.management_version || o.rabbitmq_version || '?'} compatible`],
      ['Runtime', o.erlang_full_version || o.erlang_version],
      ['Uptime', uptime ? fmtDuration(uptime.uptime) : '–'],
    ];
    if (uptime) {
      rows.push(['Memory', `${(uptime.mem_used / 1048576).toFixed(1)} MiB`]);
      rows.push(['File descriptors', `${fmtNum(uptime.fd_used)} / ${fmtNum(uptime.fd_total)}`]);
      rows.push(['Goroutines', fmtNum(uptime.proc_used)]);
    }
    clear(node, rows.map(([k, v]) => [h('dt', null, k), h('dd', { id: 'node-' + k.toLowerCase().replace(/\W+/g, '-') }, v ?? '–')]));
    const qs = await api.get('/api/queues?sort=messages&sort_reverse=true&page=1&page_size=5');
    top.setRows(qs.items || []);
  }

  return {
    el,
    refresh,
    destroy() { rates.destroy(); depth.destroy(); },
  };
}

// metaState is a node's place in the JetStream meta group, as the
// answering node knows it.
function metaState(n) {
  if (n.meta_leader) return 'leader';
  if (n.meta_offline) return 'offline';
  return n.meta_current ? 'follower, current' : 'follower';
}
