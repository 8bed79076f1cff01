// Reusable pieces: sortable tables, forms whose errors appear next to
// their button, inline confirmations, sections and stat tiles.

import { h, clear } from './dom.js';
import { errText } from './api.js';

// Table: columns [{key, label, value(row) -> sortable, cell(row) -> node|string, cls, num}]
export class Table {
  constructor(columns, opts = {}) {
    this.columns = columns;
    this.opts = opts;
    this.sortKey = opts.sortKey || columns[0].key;
    this.reverse = !!opts.reverse;
    this.rows = [];
    this.thead = h('thead');
    this.tbody = h('tbody');
    // On phones the header row is hidden (rows become cards): this select
    // sorts instead.
    this.sortSel = h('select', { 'aria-label': 'Sort by' });
    this.sortSel.addEventListener('change', () => {
      const [key, dir] = this.sortSel.value.split(':');
      this.sortKey = key;
      this.reverse = dir === 'desc';
      this.renderHead();
      this.render();
    });
    this.el = h('div', null,
      h('label', { class: 'sort-select' }, 'Sort by', this.sortSel),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data ' + (opts.cls || '') }, this.thead, this.tbody)));
    this.renderHead();
  }

  renderHead() {
    clear(this.sortSel, this.columns.filter((c) => c.value !== null && c.label).flatMap((c) => [
      h('option', { value: c.key + ':asc' }, c.label + (c.num ? ' (low first)' : ' (A–Z)')),
      h('option', { value: c.key + ':desc' }, c.label + (c.num ? ' (high first)' : ' (Z–A)')),
    ]));
    this.sortSel.value = this.sortKey + (this.reverse ? ':desc' : ':asc');
    clear(this.thead, h('tr', null, this.columns.map((c) => {
      const sorted = c.key === this.sortKey;
      const th = h('th', {
        class: [c.num ? 'num' : '', c.value === null ? '' : 'sortable', sorted ? (this.reverse ? 'desc' : 'asc') : ''].join(' ').trim(),
        scope: 'col',
        'aria-sort': sorted ? (this.reverse ? 'descending' : 'ascending') : undefined,
        dataset: { key: c.key },
      }, c.label);
      if (c.value !== null) {
        th.tabIndex = 0;
        const sort = () => {
          if (this.sortKey === c.key) this.reverse = !this.reverse;
          else { this.sortKey = c.key; this.reverse = !!c.num; }
          this.renderHead();
          this.render();
        };
        th.addEventListener('click', sort);
        th.addEventListener('keydown', (e) => { if (e.key === 'Enter') sort(); });
      }
      return th;
    })));
  }

  value(c, row) {
    if (c.value) return c.value(row);
    return row[c.key];
  }

  // setRows re-renders only when the rows changed, so that a refresh does
  // not wipe an inline confirmation or an outcome shown in a row.
  setRows(rows) {
    const key = JSON.stringify(rows || []);
    if (key === this.key) return;
    this.key = key;
    this.rows = rows || [];
    this.render();
  }

  render() {
    const col = this.columns.find((c) => c.key === this.sortKey) || this.columns[0];
    const rows = [...this.rows].sort((a, b) => {
      const x = this.value(col, a), y = this.value(col, b);
      let r;
      if (typeof x === 'number' && typeof y === 'number') r = x - y;
      else r = String(x ?? '').localeCompare(String(y ?? ''), undefined, { numeric: true });
      return this.reverse ? -r : r;
    });
    if (!rows.length) {
      clear(this.tbody, h('tr', { class: 'empty' }, h('td', { colspan: this.columns.length }, this.opts.empty || 'Nothing here yet.')));
      return;
    }
    clear(this.tbody, rows.map((row) => {
      const tr = h('tr', { dataset: this.opts.rowData ? this.opts.rowData(row) : {} },
        this.columns.map((c) => h('td', { class: (c.num ? 'num ' : '') + (c.cls || ''), 'data-label': c.label },
          c.cell ? c.cell(row) : String(this.value(c, row) ?? ''))));
      return tr;
    }));
  }
}

// msgLine is the place next to an action where its outcome appears.
export function msgLine() {
  const el = h('p', { class: 'msg', role: 'status', 'aria-live': 'polite' });
  return {
    el,
    ok(text) { el.className = 'msg ok'; el.textContent = text; },
    err(text) { el.className = 'msg error'; el.textContent = text; el.setAttribute('role', 'alert'); },
    info(text) { el.className = 'msg'; el.textContent = text; },
    clear() { el.className = 'msg'; el.textContent = ''; },
  };
}

// field builds a labelled input. spec: {name, label, type, value, options, placeholder, required, rows, help}
export function field(spec) {
  const id = spec.id;
  let input;
  if (spec.type === 'select') {
    input = h('select', { id, name: spec.name }, (spec.options || []).map((o) => {
      const [v, l] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: v === spec.value }, l);
    }));
  } else if (spec.type === 'textarea') {
    input = h('textarea', { id, name: spec.name, rows: spec.rows || 4, placeholder: spec.placeholder, spellcheck: 'false' });
    input.value = spec.value || '';
  } else if (spec.type === 'checkbox') {
    input = h('input', { id, name: spec.name, type: 'checkbox', checked: !!spec.value });
    return h('label', { class: 'check', for: id }, input, ' ', spec.label);
  } else {
    input = h('input', {
      id, name: spec.name, type: spec.type || 'text', value: spec.value ?? '', placeholder: spec.placeholder,
      required: spec.required, autocomplete: spec.autocomplete || 'off', list: spec.list,
    });
  }
  return h('label', { class: 'field ' + (spec.wide ? 'wide' : ''), for: id }, h('span', null, spec.label), input,
    spec.help ? h('small', null, spec.help) : null);
}

// actionForm: fields, a submit button and the message line beside it.
// onSubmit(values, msg) returns a success text (or nothing) or throws.
export function actionForm({ id, fields, submit, onSubmit, cls, danger }) {
  const msg = msgLine();
  const btn = h('button', { type: 'submit', id: id + '-submit', class: danger ? 'danger' : 'primary' }, submit);
  const form = h('form', { id, class: 'action-form ' + (cls || ''), novalidate: true },
    h('div', { class: 'fields' }, fields.map((f) => field({ ...f, id: id + '-' + f.name }))),
    h('div', { class: 'actions' }, btn, msg.el));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = {};
    for (const f of fields) {
      const el = form.elements[f.name];
      values[f.name] = f.type === 'checkbox' ? el.checked : el.value;
    }
    btn.disabled = true;
    msg.info('Working…');
    try {
      const r = await onSubmit(values, msg);
      if (typeof r === 'string') msg.ok(r);
      else if (r === undefined) msg.ok('Done.');
    } catch (err) {
      msg.err(errText(err));
    } finally {
      btn.disabled = false;
    }
  });
  return { el: form, msg, form };
}

// confirmAction: a button that asks "Sure?" inline before running fn, and
// shows the outcome next to itself.
export function confirmAction({ id, label, question, fn, danger = true, small = false }) {
  const msg = msgLine();
  const wrap = h('span', { class: 'confirm-action' + (small ? ' small' : '') });
  const btn = h('button', { type: 'button', id, class: (danger ? 'danger' : '') + (small ? ' small' : '') }, label);
  const reset = () => clear(wrap, btn, msg.el);
  btn.addEventListener('click', () => {
    msg.clear();
    const yes = h('button', { type: 'button', id: id + '-yes', class: 'danger' + (small ? ' small' : '') }, 'Yes, ' + label.toLowerCase());
    const no = h('button', { type: 'button', class: small ? 'small' : '' }, 'Cancel');
    no.addEventListener('click', reset);
    yes.addEventListener('click', async () => {
      yes.disabled = no.disabled = true;
      try {
        const r = await fn();
        reset();
        msg.ok(typeof r === 'string' ? r : 'Done.');
      } catch (err) {
        reset();
        msg.err(errText(err));
      }
    });
    clear(wrap, h('span', { class: 'question' }, question || 'Are you sure?'), ' ', yes, ' ', no);
  });
  reset();
  return wrap;
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', null, title), ...children);
}

export function tile(label, value, id) {
  return h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value', id }, value));
}

// parseJSONField reads an optional JSON object typed by a person.
export function parseJSONField(text, what) {
  const t = (text || '').trim();
  if (!t) return {};
  let v;
  try {
    v = JSON.parse(t);
  } catch (e) {
    throw new Error(`${what} must be a JSON object such as {"x-match": "all"}: ${e.message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
  return v;
}
