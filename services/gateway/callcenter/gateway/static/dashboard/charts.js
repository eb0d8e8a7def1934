// Small inline-SVG charts: a line chart over time and grouped bars. No dependencies.
'use strict';

const Charts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }
  // A round step so that four steps cover ``value`` (whole numbers for counts).
  function niceStep(value, integer) {
    const raw = value / 4;
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * p;
    for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) { step = m * p; break; }
    return integer ? Math.max(1, Math.ceil(step)) : step;
  }
  function fmt(n) {
    if (n >= 1000) return (n / 1000).toFixed(n >= 10000 ? 0 : 1) + 'k';
    return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }

  // A frame with y gridlines; returns helpers to place data.
  function frame(title, { width = 560, height = 240, max, integer = false, left = 44 }) {
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
    root.append(svg('title', {}, title));
    const top = 10, bottom = height - 34, right = width - 10;
    const yMax = niceStep(max, integer) * 4;
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      const y = bottom - ((bottom - top) * i) / 4;
      root.append(svg('line', { x1: left, x2: right, y1: y, y2: y, stroke: '#e5e7eb' }));
      root.append(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6272' }, fmt(v)));
    }
    const y = (v) => bottom - ((bottom - top) * v) / yMax;
    return { root, top, bottom, left, right, y, width, height };
  }

  function legend(items) {
    const div = document.createElement('div');
    div.className = 'legend';
    for (const { name, color } of items) {
      const span = document.createElement('span');
      span.style.setProperty('--c', color);
      span.textContent = name;
      div.append(span);
    }
    return div;
  }

  // A visually hidden table with the same numbers, for screen readers.
  function table(caption, head, rows) {
    const t = document.createElement('table');
    t.className = 'sr-only';
    t.innerHTML = '<caption></caption><thead><tr></tr></thead><tbody></tbody>';
    t.querySelector('caption').textContent = caption;
    for (const h of head) t.querySelector('thead tr').append(Object.assign(document.createElement('th'), { textContent: h }));
    for (const r of rows) {
      const tr = document.createElement('tr');
      for (const c of r) tr.append(Object.assign(document.createElement('td'), { textContent: c }));
      t.querySelector('tbody').append(tr);
    }
    return t;
  }

  function timeLabel(iso, bucket) {
    const d = new Date(iso);
    if (bucket === 'day') return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }

  /** Lines over time: {title, times: [iso], series: [{name, color, values}], bucket}. */
  function line(container, { title, times, series, bucket }) {
    container.replaceChildren();
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const f = frame(title, { max, integer: true });
    const n = Math.max(times.length - 1, 1);
    const x = (i) => f.left + ((f.right - f.left) * i) / n;
    const step = Math.max(1, Math.ceil(times.length / 6));
    times.forEach((t, i) => {
      if (i % step === 0 || i === times.length - 1) {
        f.root.append(svg('text', { x: x(i), y: f.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6272' }, timeLabel(t, bucket)));
      }
    });
    for (const s of series) {
      const points = s.values.map((v, i) => `${x(i).toFixed(1)},${f.y(v).toFixed(1)}`).join(' ');
      f.root.append(svg('polyline', { points, fill: 'none', stroke: s.color, 'stroke-width': 2, 'data-series': s.name }));
      s.values.forEach((v, i) => {
        if (v > 0) {
          const dot = svg('circle', { cx: x(i), cy: f.y(v), r: 2.5, fill: s.color });
          dot.append(svg('title', {}, `${s.name} ${timeLabel(times[i], bucket)}: ${v}`));
          f.root.append(dot);
        }
      });
    }
    container.append(f.root, legend(series),
      table(title, ['time', ...series.map((s) => s.name)], times.map((t, i) => [timeLabel(t, bucket), ...series.map((s) => String(s.values[i]))])));
  }

  /** Grouped bars: {title, categories: [label], series: [{name, color, values}], unit}. */
  function bars(container, { title, categories, series, unit = '', integer = false }) {
    container.replaceChildren();
    if (!categories.length) {
      container.append(Object.assign(document.createElement('p'), { className: 'empty', textContent: 'No data yet.' }));
      return;
    }
    const max = Math.max(0, ...series.flatMap((s) => s.values));
    const f = frame(title, { max: max || 1, integer });
    const groupW = (f.right - f.left) / categories.length;
    const barW = Math.min(36, (groupW * 0.8) / series.length);
    categories.forEach((c, ci) => {
      const gx = f.left + groupW * ci + (groupW - barW * series.length) / 2;
      series.forEach((s, si) => {
        const v = s.values[ci] || 0;
        const y = f.y(v);
        const rect = svg('rect', { x: gx + barW * si, y, width: Math.max(barW - 2, 1), height: Math.max(f.bottom - y, 0), fill: s.color, rx: 2 });
        rect.append(svg('title', {}, `${c} ${s.name}: ${fmt(v)}${unit}`));
        f.root.append(rect);
      });
      f.root.append(svg('text', { x: f.left + groupW * ci + groupW / 2, y: f.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6272' }, c));
    });
    container.append(f.root);
    if (series.length > 1) container.append(legend(series));
    container.append(table(title, ['', ...series.map((s) => s.name)], categories.map((c, i) => [c, ...series.map((s) => fmt(s.values[i] || 0) + unit)])));
  }

  /** Horizontal bars with labels on the left: {title, rows: [{label, value, note}], max, unit}. */
  function hbars(container, { title, rows, max, unit = '' }) {
    container.replaceChildren();
    if (!rows.length) {
      container.append(Object.assign(document.createElement('p'), { className: 'empty', textContent: 'No data yet.' }));
      return;
    }
    const width = 560, rowH = 28, left = 170, right = width - 90;
    const height = rows.length * rowH + 10;
    const top = max || Math.max(1e-9, ...rows.map((r) => r.value));
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
    root.append(svg('title', {}, title));
    rows.forEach((r, i) => {
      const y = 5 + i * rowH;
      const w = Math.max(((right - left) * r.value) / top, r.value > 0 ? 2 : 0);
      root.append(svg('text', { x: left - 8, y: y + 17, 'text-anchor': 'end', 'font-size': 12, fill: '#1d2330' }, r.label));
      root.append(svg('rect', { x: left, y: y + 4, width: right - left, height: rowH - 10, fill: '#f1f2f5', rx: 3 }));
      const bar = svg('rect', { x: left, y: y + 4, width: w, height: rowH - 10, fill: r.color || '#c62828', rx: 3 });
      bar.append(svg('title', {}, `${r.label}: ${fmt(r.value)}${unit}${r.note ? ' (' + r.note + ')' : ''}`));
      root.append(bar);
      root.append(svg('text', { x: right + 6, y: y + 17, 'font-size': 12, fill: '#5b6272' }, fmt(r.value) + unit + (r.note ? ' · ' + r.note : '')));
    });
    container.append(root, table(title, ['', 'value'], rows.map((r) => [r.label, fmt(r.value) + unit + (r.note ? ' (' + r.note + ')' : '')])));
  }

  return { line, bars, hbars };
})();
