// Shared helpers of the dashboard pages (plain JS, no build).
'use strict';

const CC = (() => {
  async function api(path) {
    const res = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.status === 401) {
      location.href = '/dashboard/login?next=' + encodeURIComponent(location.pathname + location.search);
      throw new Error('not logged in');
    }
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function badge(text, cls) {
    return el('span', { class: 'badge ' + (cls || text || '') }, text == null ? '' : String(text));
  }

  function fmtTime(value) {
    if (!value) return '';
    const d = new Date(value);
    if (isNaN(d)) return String(value);
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function fmtDuration(seconds) {
    if (seconds == null) return '';
    const s = Math.round(Number(seconds));
    return s >= 60 ? Math.floor(s / 60) + 'm ' + (s % 60) + 's' : s + 's';
  }

  function toolLine(tool) {
    const ok = tool.success !== false;
    return el('div', { class: 'tools' },
      ok ? '✓ ' : el('span', { class: 'err' }, '✗ '),
      el('code', {}, tool.name || 'tool'),
      tool.duration_ms != null ? ' · ' + Math.round(tool.duration_ms) + ' ms' : '',
      !ok && tool.error ? el('span', { class: 'err' }, ' · ' + tool.error) : '');
  }

  // One turn: what the customer said, the tools used, the reply.
  function turnView(turn) {
    return el('div', { class: 'turn', 'data-turn': turn.turn_index },
      turn.user_text ? el('div', { class: 'u' }, turn.user_text) : null,
      (turn.tool_calls || []).map(toolLine),
      el('div', { class: 'a' }, turn.assistant_text || '', turn.interrupted ? ' (interrupted)' : ''));
  }

  function summaryView(summary) {
    if (!summary) return null;
    return el('div', { class: 'summary', 'data-summary': '' },
      el('div', {}, el('strong', {}, 'Summary: '), summary.summary || ''),
      el('div', { class: 'small' },
        'Sentiment ', badge(summary.sentiment),
        ' · satisfaction ', el('strong', {}, String(summary.satisfaction ?? '–')), '/5',
        ' · ', summary.resolved ? 'resolved' : 'unresolved',
        summary.follow_up_needed ? ' · follow-up needed' : ''));
  }

  return { api, el, badge, fmtTime, fmtDuration, turnView, summaryView, toolLine };
})();
