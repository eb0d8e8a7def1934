// Dead letters: GET /api/dead-letters; the Replay button POSTs /api/dead-letters/{id}/replay.
'use strict';

(() => {
  const { api, el, fmtTime } = CC;
  const body = document.querySelector('#dead-letters tbody');

  async function replay(item, button) {
    button.disabled = true;
    const res = await fetch('/api/dead-letters/' + item.id + '/replay', {
      method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    const reply = await res.json().catch(() => ({}));
    button.textContent = res.ok ? 'Replayed (' + reply.replay_count + ')' : 'Failed: ' + (reply.detail || res.status);
    button.disabled = false;
  }

  function row(item) {
    const button = el('button', { type: 'button', 'data-replay': item.id }, 'Replay');
    button.addEventListener('click', () => replay(item, button).catch(console.error));
    const call = item.call_id
      ? el('a', { href: '/dashboard/calls/' + encodeURIComponent(item.call_id) }, String(item.call_id).slice(0, 12))
      : '';
    return el('tr', { 'data-dead-letter': item.id },
      el('td', {}, fmtTime(item.created_at)),
      el('td', {}, item.consumer),
      el('td', {}, el('code', {}, item.subject)),
      el('td', {}, call),
      el('td', {}, String(item.attempts)),
      el('td', { class: 'small' }, item.reason),
      el('td', {}, button));
  }

  async function load() {
    const reply = await api('/api/dead-letters?limit=100');
    body.replaceChildren(...reply.items.map(row));
    document.getElementById('dl-count').textContent =
      reply.total ? reply.total + ' dead letters' : 'No dead letters.';
  }

  load().catch(console.error);
})();
