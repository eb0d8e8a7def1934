// The agent inbox: the queue, one conversation, take / reply / hand back / close.
// Reads and writes the same REST API any agent desktop can use (/api/inbox…); live through SSE.
'use strict';

(() => {
  const { el, fmtTime, fmtDuration } = CC;
  const $ = (id) => document.getElementById(id);
  let me = '';
  let current = null;   // call_id shown on the right
  let item = null;      // its inbox item

  async function call(method, path, body) {
    const res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) { location.href = '/dashboard/inbox/login'; throw new Error('not logged in'); }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.detail || ('HTTP ' + res.status));
    return data;
  }

  function stateLabel(it) {
    if (it.state === 'waiting_for_agent') return 'waiting ' + fmtDuration(it.waiting_s);
    if (it.state === 'agent') return 'with ' + (it.agent_name || 'an agent');
    return it.state;
  }

  async function loadQueue() {
    const page = await call('GET', '/api/inbox');
    me = page.agent_name;
    $('me').textContent = me;
    const list = $('queue');
    list.textContent = '';
    $('queue-empty').hidden = page.items.length > 0;
    for (const it of page.items) {
      list.append(el('li', { 'data-call': it.call_id, 'aria-current': it.call_id === current ? 'true' : 'false' },
        el('button', { class: 'open', type: 'button', onclick: () => open(it.call_id) },
          el('strong', {}, (it.customer_id || it.customer_number || 'Visitor') + ' · ' + it.channel),
          el('div', { class: 'meta' }, stateLabel(it) + ' · ' + (it.reason || '')),
          it.summary ? el('div', { class: 'meta' }, it.summary) : null)));
    }
  }

  function entryView(entry) {
    const who = entry.sender === 'agent' ? (entry.agent_name || 'Agent') + ' (agent)'
      : entry.sender === 'assistant' ? 'Assistant' : entry.sender === 'customer' ? 'Customer' : '';
    return el('div', { class: 'entry ' + entry.sender },
      who ? el('span', { class: 'who' }, who + ' · ' + fmtTime(entry.at)) : null,
      (entry.tools || []).map((tool) => el('div', { class: 'tools' },
        tool.success ? '✓ ' : '✗ ', el('code', {}, tool.name),
        tool.result ? ' → ' + JSON.stringify(tool.result) : '', tool.error ? ' · ' + tool.error : '')),
      entry.text);
  }

  async function open(callId) {
    current = callId;
    const detail = await call('GET', '/api/inbox/' + encodeURIComponent(callId));
    item = detail.item;
    $('conv-hint').hidden = true;
    $('conv-body').hidden = false;
    $('conv-title').textContent = 'Conversation · ' + item.channel;
    $('conv-meta').textContent = [
      'Customer: ' + (item.customer_id || 'not verified') + (item.customer_number ? ' (' + item.customer_number + ')' : ''),
      'Reason: ' + (item.reason || '–'),
      'State: ' + stateLabel(item),
      item.ticket_id ? 'Ticket: ' + item.ticket_id : '',
    ].filter(Boolean).join(' · ');
    $('conv-summary').textContent = item.summary ? 'Summary: ' + item.summary : '';
    const mine = item.state === 'agent' && item.agent_name === me;
    $('take').hidden = item.state !== 'waiting_for_agent';
    $('hand-back').hidden = !mine;
    $('close').hidden = !mine;
    $('reply').hidden = !mine || item.channel === 'voice' || item.channel === 'web_voice';
    const log = $('transcript');
    log.textContent = '';
    detail.transcript.forEach((entry) => log.append(entryView(entry)));
    for (const li of $('queue').children) li.setAttribute('aria-current', li.dataset.call === callId ? 'true' : 'false');
  }

  async function act(path, body) {
    $('notice').textContent = '';
    try {
      const result = await call('POST', '/api/inbox/' + encodeURIComponent(current) + path, body);
      if (result && result.delivered === false) $('notice').textContent = 'Stored, but the customer is not connected right now.';
    } catch (error) {
      $('notice').textContent = error.message;
    }
    await refresh();
  }

  async function refresh() {
    await loadQueue();
    if (current) await open(current).catch(() => {});
  }

  $('take').addEventListener('click', () => act('/take'));
  $('hand-back').addEventListener('click', () => act('/hand-back'));
  $('close').addEventListener('click', () => act('/close'));
  $('reply').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('reply-text').value.trim();
    if (!text) return;
    $('reply-text').value = '';
    act('/messages', { text });
  });
  $('reply-text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); $('reply').requestSubmit(); }
  });

  let pending = null;
  function soon() {  // many notices in a burst: one refresh
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh().catch(() => {}); }, 150);
  }
  function live() {
    const source = new EventSource('/api/inbox/events');
    source.addEventListener('hello', () => { $('conn').textContent = '● live'; soon(); });
    source.addEventListener('inbox.updates', soon);
    source.addEventListener('resync', soon);
    source.onerror = () => { $('conn').textContent = '○ reconnecting'; };
  }

  // "Take over" on the live view: the supervisor takes a conversation straight from the bot.
  const takeOver = new URLSearchParams(location.search).get('take');
  if (takeOver) {
    history.replaceState(null, '', location.pathname);
    current = takeOver;
    act('/take').catch(() => {});
  } else {
    refresh().catch(() => {});
  }
  live();
  setInterval(() => { if (item && item.state === 'waiting_for_agent') soon(); }, 5000);
})();
