// Shovels: the dynamic shovels (RabbitMQ's shovel parameters) with their
// state, a form to add one (AMQP or webhook destination) and deletion.
// Definitions need the policymaker or administrator tag; states come from
// /api/shovels, which RabbitMQ opens to monitoring users and
// administrators.

import { h, clear, enc } from './dom.js';
import * as api from './api.js';
import { Table, actionForm, confirmAction, section, parseJSONField } from './widgets.js';

export const canDefineShovels = () => api.hasTag('policymaker') || api.isAdmin();

const ends = (v, side) => {
  const uri = [].concat(v[side + '-uri'] || [])[0] || '';
  const what = v[side + '-queue'] !== undefined ? 'queue ' + v[side + '-queue']
    : v[side + '-exchange'] !== undefined ? `exchange ${v[side + '-exchange']}${v[side + '-exchange-key'] ? ' (' + v[side + '-exchange-key'] + ')' : ''}` : '';
  return [uri === 'amqp://' ? 'this broker' : uri, what].filter(Boolean).join(' · ');
};

export function shovelsView() {
  const count = h('span', { class: 'muted' });
  const note = h('p', { class: 'muted', id: 'shovels-note' });
  let rows = [];
  const table = new Table([
    { key: 'name', label: 'Name' },
    { key: 'vhost', label: 'Vhost' },
    { key: 'source', label: 'Source', value: (r) => ends(r.value, 'src') },
    { key: 'destination', label: 'Destination', value: (r) => ends(r.value, 'dest') },
    { key: 'ack', label: 'Ack mode', value: (r) => r.value['ack-mode'] || 'on-confirm' },
    { key: 'state', label: 'State', value: (r) => r.state || '–',
      cell: (r) => h('span', { class: 'shovel-state ' + (r.state || ''), title: r.reason || '' }, r.state || '–', r.reason ? ': ' + r.reason : '') },
    { key: 'actions', label: '', value: () => '', cell: (r) => (canDefineShovels() ? confirmAction({
      id: `delete-shovel-${r.vhost}-${r.name}`.replace(/[^A-Za-z0-9_-]/g, '_'), label: 'Delete', small: true,
      question: `Delete shovel ${r.name}?`,
      fn: async () => { await api.del(`/api/parameters/shovel/${enc(r.vhost)}/${enc(r.name)}`); setTimeout(refresh, 200); return 'Deleted.'; },
    }) : '') },
  ], { sortKey: 'name', empty: 'No shovels.', cls: 'shovels' });

  const form = actionForm({
    id: 'add-shovel',
    submit: 'Add shovel',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'vhost', label: 'Vhost', value: '/' },
      { name: 'src_uri', label: 'Source URI', value: 'amqp://', help: 'amqp:// alone is this broker' },
      { name: 'src_queue', label: 'Source queue', required: true },
      { name: 'dest_uri', label: 'Destination URI', value: 'amqp://', help: 'amqp://…, or an http(s):// URL for a webhook', wide: true },
      { name: 'dest_queue', label: 'Destination queue', help: 'leave empty for a webhook' },
      { name: 'ack_mode', label: 'Ack mode', type: 'select', options: ['on-confirm', 'on-publish', 'no-ack'], value: 'on-confirm' },
      { name: 'prefetch', label: 'Prefetch count', value: '1000' },
      { name: 'delete_after', label: 'Delete after', type: 'select', options: ['never', 'queue-length'], value: 'never' },
      { name: 'extra', label: 'More keys (JSON)', type: 'textarea', rows: 2, wide: true,
        placeholder: '{"dest-http-signature-secret": "…", "dest-add-forward-headers": true}' },
    ],
    async onSubmit(v) {
      const value = {
        'src-uri': v.src_uri.trim(), 'src-queue': v.src_queue.trim(), 'dest-uri': v.dest_uri.trim(),
        'ack-mode': v.ack_mode, 'src-prefetch-count': Number(v.prefetch), 'src-delete-after': v.delete_after,
        ...parseJSONField(v.extra, 'More keys'),
      };
      if (v.dest_queue.trim()) value['dest-queue'] = v.dest_queue.trim();
      await api.put(`/api/parameters/shovel/${enc(v.vhost || '/')}/${enc(v.name.trim())}`, { value });
      setTimeout(refresh, 300);
      return `Shovel ${v.name.trim()} saved.`;
    },
  });

  const detail = h('div', { id: 'shovel-definitions' });
  const el = h('div', { class: 'view shovels' },
    h('h1', null, 'Shovels'),
    h('div', { class: 'toolbar' }, count),
    table.el, note,
    canDefineShovels() ? section('Add or replace a shovel', form.el) : null,
    detail);

  async function refresh() {
    const [params, states] = await Promise.all([
      canDefineShovels() ? api.get('/api/parameters/shovel') : Promise.resolve(null),
      api.seesAll() ? api.get('/api/shovels') : Promise.resolve(null),
    ]);
    const byKey = new Map();
    for (const p of params || []) byKey.set(p.vhost + '\u0000' + p.name, { ...p });
    for (const s of states || []) {
      const k = s.vhost + '\u0000' + s.name;
      const r = byKey.get(k) || { name: s.name, vhost: s.vhost, value: {} };
      r.state = s.state;
      r.reason = s.reason;
      byKey.set(k, r);
    }
    rows = [...byKey.values()];
    table.setRows(rows);
    count.textContent = `${rows.length} shovels`;
    note.textContent = !api.seesAll() ? 'States are shown to monitoring users and administrators.' : '';
    clear(detail, params && params.length ? section('Definitions', h('pre', { class: 'payload' }, JSON.stringify(params, null, 2))) : null);
  }
  return { el, refresh };
}
