// Live line charts drawn as SVG, and the sample history behind them.
// A History keeps timestamped samples for a window (ten minutes by
// default), optionally in sessionStorage so that a reload keeps the
// curve. A LineChart draws some of its series and redraws on resize.

import { h, s, clear, fmtRate, fmtNum } from './dom.js';

export class History {
  constructor(key, windowMs = 10 * 60 * 1000) {
    this.key = key;
    this.windowMs = windowMs;
    this.samples = [];
    if (key) {
      try {
        const v = JSON.parse(sessionStorage.getItem(key) || '[]');
        if (Array.isArray(v)) this.samples = v;
      } catch { /* a broken entry starts a new history */ }
    }
    this.trim();
  }

  add(values, t = Date.now()) {
    this.samples.push({ t, v: values });
    this.trim();
    if (this.key) {
      try { sessionStorage.setItem(this.key, JSON.stringify(this.samples)); } catch { /* full: keep in memory */ }
    }
  }

  trim() {
    const from = Date.now() - this.windowMs;
    while (this.samples.length && this.samples[0].t < from) this.samples.shift();
  }

  series(name) { return this.samples.map((x) => [x.t, x.v[name] ?? 0]); }
}

// niceStep rounds a grid step up to 1, 2, 2.5 or 5 times a power of ten
// (whole numbers only for counts).
function niceStep(v, integer) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) {
    const step = m * p;
    if (v <= step && (!integer || Number.isInteger(step))) return step;
  }
  return 10 * p;
}

let chartSeq = 0;

export class LineChart {
  // opts: {title, history, series: [{name, label, cls}], unit: 'rate'|'count', height}
  constructor(opts) {
    this.opts = { height: 180, unit: 'rate', ...opts };
    this.id = 'chart' + (++chartSeq);
    this.legend = h('ul', { class: 'legend' });
    this.plot = h('div', { class: 'plot', role: 'img', 'aria-label': opts.title });
    this.el = h('figure', { class: 'chart' },
      h('figcaption', null, opts.title),
      this.plot,
      this.legend);
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.plot);
  }

  destroy() { this.ro.disconnect(); }

  fmt(v) { return this.opts.unit === 'rate' ? fmtRate(v) : fmtNum(Math.round(v)); }

  // axis labels keep the step's precision (0.25/s, not 0.3/s).
  axis(v) {
    if (this.opts.unit !== 'rate' || v === 0 || v >= 10) return this.fmt(v);
    return Number(v.toFixed(2)) + '/s';
  }

  draw() {
    const { history, series, height } = this.opts;
    const W = Math.max(this.plot.clientWidth, 200);
    const H = height;
    const padL = 52, padR = 8, padT = 8, padB = 22;
    // The time axis spans the samples there are (at least two minutes, at
    // most the history's window), so a fresh page is not a sliver at the
    // right edge.
    const now = Date.now();
    const oldest = history.samples.length ? history.samples[0].t : now;
    const span = Math.min(history.windowMs, Math.max(2 * 60000, now - oldest));
    const from = now - span;
    const data = series.map((sr) => history.series(sr.name));
    let top = 0;
    for (const d of data) for (const [, v] of d) top = Math.max(top, v);
    const integer = this.opts.unit !== 'rate';
    const stepV = niceStep(top / 4, integer);
    const ticks = Math.max(1, Math.ceil(top / stepV - 1e-9));
    const max = stepV * ticks;
    const x = (t) => padL + ((t - from) / span) * (W - padL - padR);
    const y = (v) => padT + (1 - v / max) * (H - padT - padB);

    const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'plot-svg' });
    // grid and y labels
    for (let i = 0; i <= ticks; i++) {
      const v = stepV * i;
      const yy = y(v);
      svg.append(s('line', { x1: padL, x2: W - padR, y1: yy, y2: yy, class: 'grid' }));
      svg.append(s('text', { x: padL - 6, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, this.axis(v)));
    }
    // x labels: minutes ago
    const mins = span / 60000;
    const step = mins > 6 ? 2 : (mins > 3 ? 1 : 0.5);
    for (let m = 0; m <= mins + 1e-9; m += step) {
      const xx = x(now - m * 60000);
      const label = m === 0 ? 'now' : (Number.isInteger(m) ? `-${m}m` : `-${m * 60}s`);
      svg.append(s('text', { x: xx, y: H - 6, class: 'axis', 'text-anchor': m === 0 ? 'end' : (xx - padL < 20 ? 'start' : 'middle') }, label));
    }
    series.forEach((sr, i) => {
      const d = data[i];
      if (d.length === 0) return;
      const pts = d.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      if (d.length === 1) pts.push(`${x(now).toFixed(1)},${y(d[0][1]).toFixed(1)}`);
      const base = y(0).toFixed(1);
      const first = pts[0].split(',')[0];
      const last = pts[pts.length - 1].split(',')[0];
      svg.append(s('polygon', { points: `${first},${base} ${pts.join(' ')} ${last},${base}`, class: `area ${sr.cls}` }));
      svg.append(s('polyline', { points: pts.join(' '), class: `line ${sr.cls}` }));
    });
    if (history.samples.length === 0) {
      svg.append(s('text', { x: W / 2, y: H / 2, class: 'axis', 'text-anchor': 'middle' }, 'collecting samples…'));
    }
    clear(this.plot, svg);

    clear(this.legend, series.map((sr, i) => {
      const d = data[i];
      const cur = d.length ? d[d.length - 1][1] : 0;
      return h('li', null, h('span', { class: `swatch ${sr.cls}` }), sr.label, ' ', h('b', null, this.fmt(cur)));
    }));
  }
}
