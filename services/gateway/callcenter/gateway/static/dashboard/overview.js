// The live page: conversations updating from the bus (SSE) and the activity plots.
'use strict';

(() => {
  const { api, el, badge, fmtTime, fmtDuration, turnView, summaryView } = CC;
  const COLORS = { voice: '#7b3fe4', sms: '#0a8f6a', chat: '#0b6ee0', web_voice: '#c2410c' };
  const list = document.getElementById('live-list');
  const empty = document.getElementById('live-empty');
  const conn = document.getElementById('conn');
  const calls = new Map(); // call_id -> {call, turns: Map, summary, node}
  let recentMinutes = 15;

  // --- live conversations --------------------------------------------------------------------
  function entry(callId, fields) {
    let item = calls.get(callId);
    if (!item) {
      item = { call: { call_id: callId, status: 'active' }, turns: new Map(), summary: null, node: null };
      calls.set(callId, item);
    }
    Object.assign(item.call, fields || {});
    return item;
  }

  function shows(item) {
    const wanted = document.getElementById('channel').value;
    return !wanted || item.call.channel === wanted;
  }

  function render(item) {
    const c = item.call;
    const ended = c.status === 'ended';
    const turns = [...item.turns.values()].sort((a, b) => a.turn_index - b.turn_index);
    const box = el('div', { class: 'turns', tabindex: '0', 'aria-label': 'Transcript' },
      turns.length ? turns.map(turnView) : el('p', { class: 'empty' }, 'No completed turns yet.'));
    const node = el('article', { class: 'conv' + (ended ? ' ended' : ''), 'data-call-id': c.call_id, 'data-status': c.status || 'active' },
      el('header', {},
        badge(c.channel || '?', c.channel),
        badge(ended ? 'ended' : 'live', ended ? 'ended' : 'active'),
        el('a', { href: '/dashboard/calls/' + encodeURIComponent(c.call_id), title: 'Call details' }, c.call_id.slice(0, 12)),
        el('span', { class: 'muted small' }, c.from_number || ''),
        ended || c.channel === 'voice' || c.channel === 'web_voice' ? null : el('a', { href: '/dashboard/inbox?take=' + encodeURIComponent(c.call_id), class: 'small' }, 'Take over'),
        el('span', { class: 'muted small', style: 'margin-left:auto' },
          ended ? (c.end_reason || '') + (c.duration_s != null ? ' · ' + fmtDuration(c.duration_s) : '') : 'since ' + fmtTime(c.started_at))),
      box,
      summaryView(item.summary));
    node.hidden = !shows(item);
    if (item.node) item.node.replaceWith(node); else list.prepend(node);
    item.node = node;
    box.scrollTop = box.scrollHeight;
  }

  function refreshEmpty() {
    const shown = [...calls.values()].filter(shows);
    const live = shown.filter((i) => i.call.status !== 'ended').length;
    document.getElementById('live-count').textContent = '(' + live + ' live)';
    empty.hidden = shown.length > 0;
  }

  function order() {
    const items = [...calls.values()].sort((a, b) => {
      const ae = a.call.status === 'ended', be = b.call.status === 'ended';
      if (ae !== be) return ae ? 1 : -1;
      return String(b.call.started_at || '').localeCompare(String(a.call.started_at || ''));
    });
    for (const item of items) if (item.node) list.append(item.node);
  }

  let loading = false;
  const buffered = [];
  async function loadSnapshot() {
    loading = true;
    let snap;
    try { snap = await api('/api/live'); } finally { loading = false; }
    recentMinutes = snap.recent_minutes || recentMinutes;
    list.replaceChildren();
    calls.clear();
    for (const c of snap.calls) {
      const item = entry(c.call_id, { ...c, turns: undefined, summary: undefined });
      delete item.call.turns; delete item.call.summary;
      for (const t of c.turns || []) item.turns.set(t.turn_index, t);
      item.summary = c.summary || null;
      render(item);
    }
    order();
    // Events that arrived while the snapshot was loading (applying them twice is harmless).
    for (const [kind, data] of buffered.splice(0)) handlers[kind](data);
    refreshEmpty();
  }

  const handlers = {
    'call.started': (e) => {
      render(entry(e.call_id, { channel: e.channel, from_number: e.from_number, started_at: e.occurred_at, status: 'active' }));
      order();
      refreshStatsSoon();
    },
    'turn.completed': (e) => {
      const item = entry(e.call_id, { channel: e.channel });
      item.turns.set(e.turn_index, e);
      render(item);
      refreshStatsSoon();
    },
    'call.ended': (e) => {
      render(entry(e.call_id, { channel: e.channel, status: 'ended', end_reason: e.reason, duration_s: e.duration_s, ended_at: e.occurred_at }));
      order();
      refreshStatsSoon();
    },
    'call.summarized': (e) => {
      const item = entry(e.call_id, e.channel ? { channel: e.channel } : {});
      item.summary = e;
      render(item);
      refreshStatsSoon();
    },
  };

  let source = null;
  conn.textContent = 'connecting…';
  function listen() {
    source = new EventSource('/api/live/events');
    source.addEventListener('hello', () => {
      conn.textContent = '● live';
      // Subscribed first, then the snapshot: nothing falls between them (also after a reconnect).
      loadSnapshot().catch(console.error);
    });
    for (const [kind, fn] of Object.entries(handlers)) {
      source.addEventListener(kind, (msg) => {
        try {
          const data = JSON.parse(msg.data);
          if (loading) buffered.push([kind, data]); else { fn(data); refreshEmpty(); }
        } catch (err) { console.error(err); }
      });
    }
    source.addEventListener('resync', () => loadSnapshot().catch(console.error));
    source.onerror = () => {
      conn.textContent = '○ reconnecting…';
      if (source.readyState === EventSource.CLOSED) {
        // Closed for good (e.g. logged out): check the session, then retry.
        setTimeout(() => api('/api/live').then(listen).catch(() => {}), 3000);
      }
    };
  }

  // Drop ended conversations after a while.
  setInterval(() => {
    const cutoff = Date.now() - recentMinutes * 60000;
    for (const [id, item] of calls) {
      if (item.call.status === 'ended' && item.call.ended_at && new Date(item.call.ended_at).getTime() < cutoff) {
        item.node && item.node.remove();
        calls.delete(id);
      }
    }
    refreshEmpty();
  }, 30000);

  // --- plots ---------------------------------------------------------------------------------
  const range = document.getElementById('range');
  const channel = document.getElementById('channel');
  let statsTimer = null;
  // At most one refresh every two seconds, however busy the bus is.
  function refreshStatsSoon() {
    if (statsTimer) return;
    statsTimer = setTimeout(() => { statsTimer = null; loadStats().catch(console.error); }, 2000);
  }

  async function loadStats() {
    const q = '?hours=' + range.value + (channel.value ? '&channel=' + channel.value : '');
    const [vol, lat, sat, tools] = await Promise.all([
      api('/api/stats/volume' + q),
      api('/api/stats/latency' + q),
      api('/api/stats/satisfaction' + q),
      api('/api/stats/tools' + q),
    ]);
    const totalCalls = channel.value ? vol.totals[channel.value] || 0
      : Object.values(vol.totals).reduce((a, b) => a + b, 0);
    const kpi = (name, value, label) => el('div', { class: 'kpi', 'data-kpi': name }, el('b', {}, String(value)), label);
    document.getElementById('kpis').replaceChildren(
      kpi('calls', totalCalls, 'calls'),
      ...Object.entries(vol.totals).map(([ch, n]) => kpi(ch, n, ch)),
      kpi('satisfaction', sat.average == null ? '–' : sat.average, 'avg satisfaction (' + sat.count + ')'),
      kpi('tool-errors', (tools.error_rate * 100).toFixed(1) + '%', 'tool errors (' + tools.calls + ' calls)'));
    Charts.line(document.getElementById('chart-volume'), {
      title: 'Calls started per ' + vol.bucket + ' by channel',
      times: vol.times, bucket: vol.bucket,
      series: Object.keys(COLORS).filter((ch) => !channel.value || ch === channel.value)
        .map((ch) => ({ name: ch, color: COLORS[ch], values: vol.series[ch] || [] })),
    });
    Charts.bars(document.getElementById('chart-latency'), {
      title: 'Turn latency by stage (ms)', unit: ' ms',
      categories: lat.stages.map((s) => s.stage.replace(/_ms$/, '').replace(/_/g, ' ')),
      series: [
        { name: 'p50', color: '#8fb3e8', values: lat.stages.map((s) => s.p50) },
        { name: 'p90', color: '#3f7fd6', values: lat.stages.map((s) => s.p90) },
        { name: 'p99', color: '#0b3d8a', values: lat.stages.map((s) => s.p99) },
      ],
    });
    Charts.bars(document.getElementById('chart-satisfaction'), {
      title: 'Summarised calls by satisfaction score (1–5)',
      categories: sat.count ? Object.keys(sat.scores) : [],
      series: [{ name: 'calls', color: '#f29d38', values: Object.values(sat.scores) }], integer: true,
    });
    Charts.hbars(document.getElementById('chart-tools'), {
      title: 'Tool error rate by tool (%)', unit: '%', max: 100,
      rows: [
        { label: 'all tools', value: +(tools.error_rate * 100).toFixed(1), note: tools.errors + '/' + tools.calls, color: '#8e1b1b' },
        ...tools.tools.map((t) => ({ label: t.name.replace(/_/g, ' '), value: +(t.error_rate * 100).toFixed(1), note: t.errors + '/' + t.calls })),
      ].filter((r, i) => i > 0 || tools.calls > 0),
    });
  }
  range.addEventListener('change', () => loadStats().catch(console.error));
  channel.addEventListener('change', () => {
    for (const item of calls.values()) if (item.node) item.node.hidden = !shows(item);
    refreshEmpty();
    loadStats().catch(console.error);
  });
  setInterval(() => loadStats().catch(console.error), 60000);

  listen();
  loadStats().catch(console.error);
})();
