// Exchanges: the table and the page of one exchange (bindings both ways,
// publish, delete, and the routing dry run of POST /v1/route).

import { h, clear, enc, debounce } from './dom.js';
import * as api from './api.js';
import { Table, actionForm, confirmAction, section, parseJSONField } from './widgets.js';
import { features, featureText, loadVHosts, publishMessageForm } from './queues.js';

const display = (n) => (n === '' ? 'amq.default' : n);

export function exchangesView() {
  const vhost = h('select', { id: 'exchanges-vhost', 'aria-label': 'Virtual host' });
  const filter = h('input', { id: 'exchanges-filter', type: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter by name' });
  const count = h('span', { class: 'muted' });
  const table = new Table([
    { key: 'vhost', label: 'Vhost' },
    { key: 'name', label: 'Name', value: (x) => display(x.name), cell: (x) => h('a', { href: `#/exchanges/${enc(x.vhost)}/${enc(display(x.name))}` }, display(x.name)) },
    { key: 'type', label: 'Type' },
    { key: 'features', label: 'Features', value: featureText, cell: features },
  ], { sortKey: 'name', empty: 'No exchanges match.' });
  let rows = [];
  const apply = () => {
    const f = filter.value.trim();
    const shown = rows.filter((x) => (!vhost.value || x.vhost === vhost.value) && (!f || display(x.name).includes(f)));
    count.textContent = `${shown.length} of ${rows.length} exchanges`;
    table.setRows(shown);
  };
  filter.addEventListener('input', debounce(apply, 120));
  vhost.addEventListener('change', apply);
  const parts = [h('h1', null, 'Exchanges'), h('div', { class: 'toolbar' }, vhost, filter, count), table.el];
  let addVhost;
  if (api.canOperate()) {
    const add = actionForm({
      id: 'add-exchange',
      submit: 'Add exchange',
      fields: [
        { name: 'vhost', label: 'Vhost', type: 'select', options: [] },
        { name: 'name', label: 'Name' },
        { name: 'type', label: 'Type', type: 'select', value: 'direct', options: ['direct', 'fanout', 'topic', 'headers'] },
        { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
        { name: 'auto_delete', label: 'Auto-delete', type: 'checkbox' },
        { name: 'internal', label: 'Internal', type: 'checkbox' },
        { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', rows: 2, placeholder: '{"alternate-exchange": "unrouted"}', wide: true },
      ],
      async onSubmit(v) {
        if (!v.name.trim()) throw new Error('Give the exchange a name.');
        await api.put(`/api/exchanges/${enc(v.vhost)}/${enc(v.name.trim())}`, {
          type: v.type, durable: v.durable, auto_delete: v.auto_delete, internal: v.internal,
          arguments: parseJSONField(v.arguments, 'Arguments'),
        });
        await refresh();
        return `Exchange ${v.name.trim()} declared.`;
      },
    });
    addVhost = add.form.elements.vhost;
    parts.push(section('Add an exchange', add.el));
  }
  const el = h('div', { class: 'view exchanges' }, ...parts);
  let loaded = false;
  async function refresh() {
    if (!loaded) {
      await loadVHosts(vhost);
      if (addVhost) await loadVHosts(addVhost, { all: false, keep: '/' });
      loaded = true;
    }
    rows = await api.get('/api/exchanges');
    apply();
  }
  return { el, refresh };
}

export function exchangeView({ params, go }) {
  const [vhost, name] = params;
  const base = `/api/exchanges/${enc(vhost)}/${enc(name)}`;
  const isDefault = name === 'amq.default' || name === '';
  const operate = api.canOperate();
  const missing = h('div');
  const info = h('div', { id: 'exchange-info' });
  const destLink = (b) => (b.destination_type === 'queue'
    ? h('a', { href: `#/queues/${enc(vhost)}/${enc(b.destination)}` }, b.destination)
    : h('a', { href: `#/exchanges/${enc(vhost)}/${enc(b.destination)}` }, b.destination));
  const unbind = (b) => confirmAction({
    id: `unbind-${b.destination_type}-${b.destination}-${b.properties_key}`, label: 'Unbind', small: true, question: 'Remove this binding?',
    fn: async () => {
      await api.del(`/api/bindings/${enc(vhost)}/e/${enc(b.source)}/${b.destination_type === 'queue' ? 'q' : 'e'}/${enc(b.destination)}/${enc(b.properties_key)}`);
      await loadBindings();
      return 'Unbound.';
    },
  });
  const outgoing = new Table([
    { key: 'destination', label: 'To', cell: destLink },
    { key: 'destination_type', label: 'Type' },
    { key: 'routing_key', label: 'Routing key', cell: (b) => h('code', null, b.routing_key) },
    { key: 'arguments', label: 'Arguments', value: (b) => JSON.stringify(b.arguments || {}) },
    ...(operate && !isDefault ? [{ key: 'x', label: '', value: null, cell: unbind }] : []),
  ], { empty: 'Nothing is bound to this exchange.', cls: 'bindings-source' });
  const incoming = new Table([
    { key: 'source', label: 'From exchange', cell: (b) => h('a', { href: `#/exchanges/${enc(vhost)}/${enc(b.source)}` }, b.source) },
    { key: 'routing_key', label: 'Routing key', cell: (b) => h('code', null, b.routing_key) },
    { key: 'arguments', label: 'Arguments', value: (b) => JSON.stringify(b.arguments || {}) },
    ...(operate ? [{ key: 'x', label: '', value: null, cell: unbind }] : []),
  ], { empty: 'This exchange is not bound to other exchanges.', cls: 'bindings-destination' });

  const parts = [
    h('p', { class: 'crumbs' }, h('a', { href: '#/exchanges' }, 'Exchanges'), ' › vhost ', h('code', null, vhost)),
    h('h1', null, h('span', { id: 'exchange-name' }, name)),
    missing,
    h('div', { class: 'grid2' }, section('Details', info), section('Dry run: where would a message go?', dryRun(vhost, name))),
    section('Bindings from this exchange', outgoing.el),
    section('Bindings to this exchange', incoming.el),
  ];
  if (operate && !isDefault) {
    const bind = actionForm({
      id: 'xbind',
      submit: 'Bind',
      fields: [
        { name: 'kind', label: 'Destination', type: 'select', value: 'q', options: [['q', 'Queue'], ['e', 'Exchange']] },
        { name: 'destination', label: 'Name', required: true },
        { name: 'routing_key', label: 'Routing key' },
        { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', rows: 2, wide: true },
      ],
      async onSubmit(v) {
        if (!v.destination.trim()) throw new Error('Name the destination.');
        await api.post(`/api/bindings/${enc(vhost)}/e/${enc(name)}/${v.kind}/${enc(v.destination.trim())}`, {
          routing_key: v.routing_key, arguments: parseJSONField(v.arguments, 'Arguments'),
        });
        await loadBindings();
        return 'Bound.';
      },
    });
    parts.push(section('Add a binding from this exchange', bind.el));
  }
  if (operate) {
    parts.push(section('Publish a message', publishMessageForm({ id: 'xpublish', vhost, exchange: name }).el));
  }
  if (operate && !isDefault && !name.startsWith('amq.')) {
    const ifUnused = h('input', { type: 'checkbox', id: 'xdelete-if-unused' });
    parts.push(section('Delete', h('div', { class: 'danger-zone' }, h('div', null,
      h('p', null, 'Delete this exchange and its bindings. ', h('label', { class: 'check', for: 'xdelete-if-unused' }, ifUnused, ' only if unused')),
      confirmAction({
        id: 'delete-exchange', label: 'Delete', question: 'Delete this exchange?',
        fn: async () => { await api.del(base + (ifUnused.checked ? '?if-unused=true' : '')); go('#/exchanges'); return 'Deleted.'; },
      })))));
  }
  const el = h('div', { class: 'view exchange' }, ...parts);

  async function loadBindings() {
    if (isDefault) {
      outgoing.opts.empty = 'The default exchange routes to every queue by its name (implicit bindings).';
      outgoing.setRows([]);
      incoming.setRows([]);
      return;
    }
    const [src, dst] = await Promise.all([api.get(`${base}/bindings/source`), api.get(`${base}/bindings/destination`)]);
    outgoing.setRows(src);
    incoming.setRows(dst);
  }

  async function refresh() {
    let x;
    try {
      x = await api.get(base);
    } catch (err) {
      if (err.status === 404) {
        clear(missing, h('p', { class: 'msg error' }, `Exchange ${name} does not exist in vhost ${vhost}. `, h('a', { href: '#/exchanges' }, 'Back to the exchanges.')));
        return;
      }
      throw err;
    }
    clear(missing);
    clear(info, h('dl', { class: 'kv' },
      h('dt', null, 'Type'), h('dd', { id: 'exchange-type' }, x.type),
      h('dt', null, 'Features'), h('dd', null, features(x)),
      h('dt', null, 'Vhost'), h('dd', null, x.vhost)),
    h('h3', null, 'Arguments'), h('div', null, Object.keys(x.arguments || {}).length ? JSON.stringify(x.arguments) : h('span', { class: 'muted' }, 'none')));
    await loadBindings();
  }
  return { el, refresh };
}

// dryRun asks POST /v1/route/{exchange}/{key}?vhost= where a message
// would be routed, without publishing it.
function dryRun(vhost, exchange) {
  const out = h('div', { id: 'route-result' });
  const form = actionForm({
    id: 'route',
    submit: 'Trace route',
    fields: [
      { name: 'routing_key', label: 'Routing key' },
      { name: 'headers', label: 'Headers (JSON, for headers exchanges)', type: 'textarea', rows: 2 },
    ],
    async onSubmit(v) {
      const headers = parseJSONField(v.headers, 'Headers');
      const key = v.routing_key;
      const path = `/v1/route/${enc(exchange)}/${enc(key)}?vhost=${enc(vhost)}`;
      const r = await api.post(path, Object.keys(headers).length ? { headers } : undefined);
      clear(out,
        r.routed
          ? h('p', { class: 'msg ok' }, 'Routed to ', r.queues.map((q, i) => [i ? ', ' : '', h('a', { href: `#/queues/${enc(vhost)}/${enc(q)}` }, q)]))
          : h('p', { class: 'msg error' }, 'Not routed: no queue would receive this message.'),
        r.hops && r.hops.length ? h('ol', { class: 'hops' }, r.hops.map((hop) => h('li', null,
          h('code', null, hop.exchange), ' → ', h('code', null, hop.destination), ` (${hop.destination_type})`,
          hop.binding_key !== undefined ? [' by binding key ', h('code', null, hop.binding_key)] : null,
          hop.via ? h('span', { class: 'muted' }, ` via ${hop.via}`) : null))) : null,
        r.alternate_exchanges && r.alternate_exchanges.length ? h('p', { class: 'muted' }, 'Alternate exchanges used: ' + r.alternate_exchanges.join(', ')) : null);
      return null;
    },
  });
  return h('div', null, h('p', { class: 'muted' }, 'Nothing is published.'), form.el, out);
}
