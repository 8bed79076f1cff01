// Queues: the sortable, filterable table and the page of one queue
// (bindings, consumers, depth chart, get, publish, purge, delete, bind).

import { h, clear, fmtNum, fmtRate, fmtBytes, enc, rate, kv, debounce } from './dom.js';
import * as api from './api.js';
import { History, LineChart } from './chart.js';
import { Table, actionForm, confirmAction, section, parseJSONField } from './widgets.js';

const ARG_BADGES = {
  'x-message-ttl': 'TTL',
  'x-expires': 'Exp',
  'x-max-length': 'Lim',
  'x-max-length-bytes': 'Lim B',
  'x-overflow': 'Ovfl',
  'x-dead-letter-exchange': 'DLX',
  'x-dead-letter-routing-key': 'DLK',
  'x-max-priority': 'Pri',
  'x-single-active-consumer': 'SAC',
  'x-queue-mode': 'Mode',
  'x-delivery-limit': 'DLim',
};

// features: badges for durable/auto-delete/exclusive and the arguments.
export function features(q) {
  const out = [];
  const badge = (text, title) => h('abbr', { class: 'badge', title }, text);
  if (q.durable) out.push(badge('D', 'durable'));
  if (q.auto_delete) out.push(badge('AD', 'auto-delete'));
  if (q.exclusive) out.push(badge('Excl', 'exclusive'));
  if (q.internal) out.push(badge('I', 'internal'));
  for (const [k, v] of Object.entries(q.arguments || {})) {
    out.push(badge(ARG_BADGES[k] || k, `${k}: ${JSON.stringify(v)}`));
  }
  return out.length ? out : h('span', { class: 'muted' }, '–');
}

// nodeCell: the node that dispatches the queue (its home; a quorum
// queue's leader) and, as RabbitMQ's list, "+N" for the other members,
// named (with those not online) in its title.
function nodeCell(q) {
  const others = (q.members || []).filter((m) => m !== q.node);
  if (!others.length) return q.node;
  const online = new Set(q.online || []);
  const title = 'members: ' + q.members.map((m) => (online.has(m) ? m : m + ' (offline)')).join(', ');
  return h('span', null, q.node, ' ', h('abbr', { class: 'badge members', title }, '+' + others.length));
}

export function featureText(q) {
  return [q.durable ? 'D' : '', q.auto_delete ? 'AD' : '', q.exclusive ? 'Excl' : '', ...Object.keys(q.arguments || {})].join(' ');
}

// vhostSelect fills a <select> with the vhosts the user may see.
export async function loadVHosts(select, { all = true, keep } = {}) {
  const vs = await api.get('/api/vhosts');
  const prev = keep ?? select.value;
  clear(select, all ? h('option', { value: '' }, 'All vhosts') : null,
    (vs || []).map((v) => h('option', { value: v.name }, v.name)));
  if ([...select.options].some((o) => o.value === prev)) select.value = prev;
  return vs;
}

export function queuesView() {
  const vhost = h('select', { id: 'queues-vhost', 'aria-label': 'Virtual host' });
  const filter = h('input', { id: 'queues-filter', type: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter by name' });
  const regex = h('input', { id: 'queues-regex', type: 'checkbox' });
  const count = h('span', { class: 'muted', id: 'queues-count' });
  const table = new Table([
    { key: 'vhost', label: 'Vhost' },
    { key: 'name', label: 'Name', cell: (q) => h('a', { href: `#/queues/${enc(q.vhost)}/${enc(q.name)}`, class: 'qname' }, q.name) },
    { key: 'type', label: 'Type' },
    { key: 'node', label: 'Node', cell: nodeCell },
    { key: 'features', label: 'Features', value: featureText, cell: features },
    { key: 'state', label: 'State', cell: (q) => h('span', { class: 'state ' + q.state }, q.state) },
    { key: 'messages_ready', label: 'Ready', num: true, cell: (q) => fmtNum(q.messages_ready) },
    { key: 'messages_unacknowledged', label: 'Unacked', num: true, cell: (q) => fmtNum(q.messages_unacknowledged) },
    { key: 'messages', label: 'Total', num: true, cell: (q) => fmtNum(q.messages) },
    { key: 'publish', label: 'Incoming', num: true, value: (q) => rate(q.message_stats, 'publish'), cell: (q) => fmtRate(rate(q.message_stats, 'publish')) },
    { key: 'deliver', label: 'Deliver / get', num: true, value: (q) => rate(q.message_stats, 'deliver_get'), cell: (q) => fmtRate(rate(q.message_stats, 'deliver_get')) },
    { key: 'ack', label: 'Ack', num: true, value: (q) => rate(q.message_stats, 'ack'), cell: (q) => fmtRate(rate(q.message_stats, 'ack')) },
    { key: 'consumers', label: 'Consumers', num: true },
  ], { sortKey: 'name', cls: 'queues', empty: 'No queues match.', rowData: (q) => ({ queue: q.name, vhost: q.vhost }) });

  let rows = [];
  const apply = () => {
    const f = filter.value.trim();
    let match = (n) => n.includes(f);
    if (f && regex.checked) {
      try {
        const re = new RegExp(f);
        match = (n) => re.test(n);
        filter.setCustomValidity('');
      } catch {
        filter.setCustomValidity('not a regular expression');
        match = () => true;
      }
    }
    const shown = rows.filter((q) => (!vhost.value || q.vhost === vhost.value) && (!f || match(q.name)));
    count.textContent = `${shown.length} of ${rows.length} queues`;
    table.setRows(shown);
  };
  filter.addEventListener('input', debounce(apply, 120));
  regex.addEventListener('change', apply);
  vhost.addEventListener('change', apply);

  const parts = [
    h('h1', null, 'Queues'),
    h('div', { class: 'toolbar' }, vhost, filter, h('label', { class: 'check', for: 'queues-regex' }, regex, ' regex'), count),
    table.el,
  ];
  let addVhost;
  if (api.canOperate()) {
    const add = actionForm({
      id: 'add-queue',
      submit: 'Add queue',
      fields: [
        { name: 'vhost', label: 'Vhost', type: 'select', options: [] },
        { name: 'name', label: 'Name', required: true },
        // empty: the server's default type (default_queue_type of the vhost)
        { name: 'type', label: 'Type', type: 'select', value: '', options: [['', 'Default'], ['classic', 'Classic'], ['quorum', 'Quorum']] },
        { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
        { name: 'auto_delete', label: 'Auto-delete', type: 'checkbox' },
        { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', rows: 2, placeholder: '{"x-max-length": 1000}', wide: true },
      ],
      async onSubmit(v) {
        if (!v.name.trim()) throw new Error('Give the queue a name.');
        const args = parseJSONField(v.arguments, 'Arguments') || {};
        if (v.type) args['x-queue-type'] = v.type;
        await api.put(`/api/queues/${enc(v.vhost)}/${enc(v.name.trim())}`, {
          durable: v.durable, auto_delete: v.auto_delete, arguments: args,
        });
        await refresh();
        return `Queue ${v.name.trim()} declared.`;
      },
    });
    addVhost = add.form.elements.vhost;
    parts.push(section('Add a queue', add.el));
  }
  const el = h('div', { class: 'view queues' }, ...parts);

  let vhostsLoaded = false;
  async function refresh() {
    if (!vhostsLoaded) {
      await loadVHosts(vhost);
      if (addVhost) await loadVHosts(addVhost, { all: false, keep: '/' });
      vhostsLoaded = true;
    }
    rows = await api.get('/api/queues');
    apply();
  }
  return { el, refresh };
}

// ---------------------------------------------------------------------------

export function queueView({ params, go }) {
  const [vhost, name] = params;
  const base = `/api/queues/${enc(vhost)}/${enc(name)}`;
  const title = [
    h('p', { class: 'crumbs' }, h('a', { href: '#/queues' }, 'Queues'), ' › vhost ', h('code', null, vhost)),
    h('h1', null, h('span', { id: 'queue-name' }, name)),
  ];
  const missing = h('div');
  const tiles = h('div', { class: 'tiles', id: 'queue-tiles' });
  const info = h('div', { id: 'queue-info' });
  // Kept per queue for the tab's life, so coming back continues the curve.
  const history = new History(`warren.history.q.${vhost}\u0000${name}`);
  const chart = new LineChart({
    title: 'Queue depth', history, unit: 'count',
    series: [
      { name: 'ready', label: 'Ready', cls: 's5' },
      { name: 'unacked', label: 'Unacked', cls: 's6' },
    ],
  });
  const rateChart = new LineChart({
    title: 'Message rates', history, unit: 'rate', height: 140,
    series: [
      { name: 'publish', label: 'Incoming', cls: 's1' },
      { name: 'deliver', label: 'Deliver / get', cls: 's2' },
      { name: 'ack', label: 'Ack', cls: 's3' },
    ],
  });
  const consumers = new Table([
    { key: 'consumer_tag', label: 'Consumer tag' },
    { key: 'channel', label: 'Channel', value: (c) => c.channel_details && c.channel_details.name },
    { key: 'ack_required', label: 'Ack required', cell: (c) => (c.ack_required ? 'yes' : 'no') },
    { key: 'exclusive', label: 'Exclusive', cell: (c) => (c.exclusive ? 'yes' : 'no') },
    { key: 'prefetch_count', label: 'Prefetch', num: true },
    { key: 'arguments', label: 'Arguments', value: (c) => JSON.stringify(c.arguments || {}) },
  ], { empty: 'No consumers.' });
  const operate = api.canOperate();
  const bindings = new Table([
    { key: 'source', label: 'From exchange', cell: (b) => (b.source === '' ? h('i', null, '(default exchange)') : h('a', { href: `#/exchanges/${enc(vhost)}/${enc(b.source)}` }, b.source)) },
    { key: 'routing_key', label: 'Routing key', cell: (b) => h('code', null, b.routing_key) },
    { key: 'arguments', label: 'Arguments', value: (b) => JSON.stringify(b.arguments || {}) },
    ...(operate ? [{
      key: 'unbind', label: '', value: null, cell: (b) => (b.source === '' ? '' : confirmAction({
        id: `unbind-${b.source}-${b.properties_key}`, label: 'Unbind', small: true, question: 'Remove this binding?',
        fn: async () => { await api.del(`/api/bindings/${enc(vhost)}/e/${enc(b.source)}/q/${enc(name)}/${enc(b.properties_key)}`); await loadBindings(); return 'Unbound.'; },
      })),
    }] : []),
  ], { empty: 'No bindings.' });

  // --- get messages
  const got = h('div', { id: 'get-result', class: 'messages' });
  const getForm = actionForm({
    id: 'get',
    submit: 'Get messages',
    fields: [
      // Read-only users (monitoring without management) only look.
      { name: 'ackmode', label: 'Ack mode', type: 'select', value: 'ack_requeue_true', options: [
        ['ack_requeue_true', 'Nack, requeue (look only)'],
        ['reject_requeue_true', 'Reject, requeue'],
        ...(operate ? [
          ['ack_requeue_false', 'Ack, remove from queue'],
          ['reject_requeue_false', 'Reject, no requeue (dead-letter)'],
        ] : []),
      ] },
      { name: 'encoding', label: 'Encoding', type: 'select', value: 'auto', options: [['auto', 'Auto: text if UTF-8, else base64'], ['base64', 'Base64']] },
      { name: 'count', label: 'Messages', type: 'number', value: '1' },
      { name: 'truncate', label: 'Truncate at (bytes)', type: 'number', value: '50000' },
    ],
    async onSubmit(v) {
      const body = { count: Number(v.count) || 1, ackmode: v.ackmode, encoding: v.encoding };
      if (v.truncate !== '') body.truncate = Number(v.truncate);
      const msgs = await api.post(`${base}/get`, body);
      showMessages(msgs);
      refresh().catch(() => {});
      return msgs.length ? `Got ${msgs.length} message${msgs.length > 1 ? 's' : ''}.` : 'The queue is empty.';
    },
  });
  function showMessages(msgs) {
    clear(got, msgs.map((m, i) => {
      const props = { ...(m.properties || {}) };
      const headers = props.headers;
      delete props.headers;
      return h('article', { class: 'message', dataset: { index: i } },
        h('header', null, h('b', null, `Message ${i + 1}`),
          h('span', { class: 'muted' }, ` · ${m.payload_bytes} bytes · exchange ${m.exchange === '' ? '(default)' : m.exchange} · routing key `),
          h('code', null, m.routing_key),
          m.redelivered ? h('span', { class: 'badge warn' }, 'redelivered') : null,
          h('span', { class: 'muted' }, ` · ${fmtNum(m.message_count)} left in the queue`)),
        h('div', { class: 'payload-head' }, 'Payload ', h('span', { class: 'badge' }, m.payload_encoding)),
        h('pre', { class: 'payload' }, m.payload),
        h('div', { class: 'grid2' },
          h('div', null, h('h3', null, 'Properties'), kv(props)),
          h('div', null, h('h3', null, 'Headers'), kv(headers || {}))));
    }));
  }

  // --- publish
  const publishForm = publishMessageForm({ id: 'publish', vhost, exchange: 'amq.default', fixedKey: name, after: () => refresh() });

  const bindForm = actionForm({
    id: 'bind',
    submit: 'Bind',
    fields: [
      { name: 'source', label: 'From exchange', required: true, list: 'bind-exchanges' },
      { name: 'routing_key', label: 'Routing key' },
      { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', rows: 2, placeholder: '{"x-match": "all", "format": "pdf"}', wide: true },
    ],
    async onSubmit(v) {
      if (!v.source.trim()) throw new Error('Name the exchange to bind from.');
      await api.post(`/api/bindings/${enc(vhost)}/e/${enc(v.source.trim())}/q/${enc(name)}`, {
        routing_key: v.routing_key, arguments: parseJSONField(v.arguments, 'Arguments'),
      });
      await loadBindings();
      return 'Bound.';
    },
  });
  const exchangeList = h('datalist', { id: 'bind-exchanges' });

  const purge = confirmAction({
    id: 'purge', label: 'Purge', question: 'Remove every ready message from this queue?',
    fn: async () => { await api.del(`${base}/contents`); await refresh(); return 'Purged.'; },
  });
  const ifEmpty = h('input', { type: 'checkbox', id: 'delete-if-empty' });
  const ifUnused = h('input', { type: 'checkbox', id: 'delete-if-unused' });
  const remove = confirmAction({
    id: 'delete-queue', label: 'Delete', question: 'Delete this queue and its messages?',
    fn: async () => {
      const q = [ifEmpty.checked ? 'if-empty=true' : '', ifUnused.checked ? 'if-unused=true' : ''].filter(Boolean).join('&');
      await api.del(base + (q ? '?' + q : ''));
      go('#/queues');
      return 'Deleted.';
    },
  });

  const parts = [
    title, missing, tiles,
    h('div', { class: 'charts' }, chart.el, rateChart.el),
    h('div', { class: 'grid2' }, section('Details', info), section('Consumers', consumers.el)),
    section('Bindings', bindings.el, operate ? [h('h3', null, 'Add a binding to this queue'), bindForm.el, exchangeList] : null),
    section('Get messages', h('p', { class: 'muted' }, 'Getting a message takes it from the queue; the requeue modes put it back (marked redelivered).'), getForm.el, got),
  ];
  if (operate) {
    parts.push(section('Publish a message', h('p', { class: 'muted' }, 'Published to the default exchange with this queue\'s name as routing key.'), publishForm.el));
    parts.push(section('Purge and delete',
      h('div', { class: 'danger-zone' },
        h('div', null, h('p', null, 'Purge removes the ready messages.'), purge),
        h('div', null, h('p', null, 'Delete removes the queue. ',
          h('label', { class: 'check', for: 'delete-if-empty' }, ifEmpty, ' only if empty'), ' ',
          h('label', { class: 'check', for: 'delete-if-unused' }, ifUnused, ' only if unused')), remove))));
  }
  const el = h('div', { class: 'view queue' }, ...parts);

  async function loadBindings() {
    bindings.setRows(await api.get(`${base}/bindings`));
  }

  let first = true;
  async function refresh() {
    let q;
    try {
      q = await api.get(base);
    } catch (err) {
      if (err.status === 404) {
        clear(missing, h('p', { class: 'msg error', id: 'queue-missing' }, `Queue ${name} does not exist in vhost ${vhost} (any more). `, h('a', { href: '#/queues' }, 'Back to the queues.')));
        return;
      }
      throw err;
    }
    clear(missing);
    const ms = q.message_stats || {};
    history.add({
      ready: q.messages_ready || 0, unacked: q.messages_unacknowledged || 0,
      publish: rate(ms, 'publish'), deliver: rate(ms, 'deliver_get'), ack: rate(ms, 'ack'),
    });
    chart.draw();
    rateChart.draw();
    const t = (label, v, id) => h('div', { class: 'tile', id }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, v));
    clear(tiles,
      t('Ready', fmtNum(q.messages_ready), 'queue-ready'),
      t('Unacked', fmtNum(q.messages_unacknowledged), 'queue-unacked'),
      t('Total', fmtNum(q.messages), 'queue-total'),
      t('Consumers', fmtNum(q.consumers), 'queue-consumers'),
      t('Incoming', fmtRate(rate(ms, 'publish')), 'queue-publish-rate'),
      t('Deliver / get', fmtRate(rate(ms, 'deliver_get')), 'queue-deliver-rate'));
    clear(info, h('dl', { class: 'kv' },
      h('dt', null, 'Vhost'), h('dd', null, q.vhost),
      h('dt', null, 'Type'), h('dd', null, q.type || 'classic'),
      h('dt', null, 'State'), h('dd', null, q.state),
      h('dt', null, 'Features'), h('dd', null, features(q)),
      h('dt', null, 'Ready bytes'), h('dd', null, fmtBytes(q.message_bytes_ready)),
      h('dt', null, 'Node'), h('dd', null, q.node),
      q.leader ? [h('dt', null, 'Leader'), h('dd', { id: 'queue-leader' }, q.leader)] : null,
      q.members ? [h('dt', null, 'Members'), h('dd', { id: 'queue-members' }, q.members.join(', '))] : null,
      q.owner_pid_details ? [h('dt', null, 'Owner'), h('dd', null, q.owner_pid_details.name)] : null),
    h('h3', null, 'Arguments'), kv(q.arguments || {}));
    consumers.setRows(q.consumer_details || []);
    if (first) {
      first = false;
      await loadBindings();
      if (operate) {
        api.get(`/api/exchanges/${enc(vhost)}`).then((xs) => clear(exchangeList,
          xs.filter((x) => x.name !== '').map((x) => h('option', { value: x.name })))).catch(() => {});
      }
    }
  }

  return { el, refresh, destroy() { chart.destroy(); rateChart.destroy(); } };
}

// publishMessageForm posts to /api/exchanges/{vhost}/{exchange}/publish
// and says whether the message was routed. fixedKey: publish to a queue
// through the default exchange.
export function publishMessageForm({ id, vhost, exchange, fixedKey, after }) {
  const fields = [];
  if (fixedKey === undefined) fields.push({ name: 'routing_key', label: 'Routing key' });
  fields.push(
    { name: 'delivery_mode', label: 'Delivery mode', type: 'select', value: '2', options: [['2', '2 – persistent'], ['1', '1 – transient']] },
    { name: 'content_type', label: 'Content type', placeholder: 'text/plain' },
    { name: 'headers', label: 'Headers (JSON)', type: 'textarea', rows: 2, placeholder: '{"x-trace": "abc"}' },
    { name: 'properties', label: 'Other properties (JSON)', type: 'textarea', rows: 2, placeholder: '{"correlation_id": "42", "reply_to": "replies", "expiration": "60000"}' },
    { name: 'payload_encoding', label: 'Payload encoding', type: 'select', value: 'string', options: [['string', 'Text'], ['base64', 'Base64']] },
    { name: 'payload', label: 'Payload', type: 'textarea', rows: 4, wide: true },
  );
  return actionForm({
    id,
    submit: 'Publish message',
    fields,
    async onSubmit(v, msg) {
      const props = parseJSONField(v.properties, 'Other properties');
      const headers = parseJSONField(v.headers, 'Headers');
      props.delivery_mode = Number(v.delivery_mode);
      if (v.content_type.trim()) props.content_type = v.content_type.trim();
      if (Object.keys(headers).length) props.headers = headers;
      const key = fixedKey === undefined ? v.routing_key : fixedKey;
      const r = await api.post(`/api/exchanges/${enc(vhost)}/${enc(exchange)}/publish`, {
        properties: props, routing_key: key, payload: v.payload, payload_encoding: v.payload_encoding,
      });
      if (after) after().catch(() => {});
      if (r && r.routed) {
        msg.ok('Message published and routed.');
      } else {
        msg.err('Message published, but not routed: no queue is bound for this routing key, so it was dropped.');
      }
      return null;
    },
  });
}
