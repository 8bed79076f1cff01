// Small DOM helpers. Everything the page shows is built with h(), which
// sets text with textContent: names, payloads and headers from the broker
// are never parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' || k === 'checked' || k === 'selected') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// fmtNum shows counts with thousands separators.
export function fmtNum(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US');
}

// fmtRate shows a per-second rate compactly.
export function fmtRate(r) {
  if (r === undefined || r === null || Number.isNaN(r)) return '–';
  const a = Math.abs(r);
  if (a === 0) return '0/s';
  if (a < 10) return r.toFixed(1) + '/s';
  if (a < 10000) return Math.round(r) + '/s';
  return (r / 1000).toFixed(1) + 'k/s';
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null) return '–';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  return d.toLocaleString();
}

// rate reads RabbitMQ's "<field>_details": {"rate": x} from an object.
export function rate(obj, field) {
  const d = obj && obj[field + '_details'];
  return d && typeof d.rate === 'number' ? d.rate : 0;
}

// vhostLabel shows the default vhost as "/".
export function enc(x) { return encodeURIComponent(x); }

// pretty renders a JSON-ish value for tables of properties and headers.
export function pretty(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// kv renders an object as a definition list (properties, client props).
export function kv(obj, cls = 'kv') {
  const dl = h('dl', { class: cls });
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return h('p', { class: 'muted' }, 'none');
  for (const k of keys) {
    const v = obj[k];
    dl.append(h('dt', null, k), h('dd', null, v !== null && typeof v === 'object' && !Array.isArray(v) ? kv(v, 'kv nested') : pretty(v)));
  }
  return dl;
}

// debounce for filter inputs.
export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
