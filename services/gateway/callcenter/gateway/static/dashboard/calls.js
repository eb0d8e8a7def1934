// The call list: filters in the query string, rows from GET /api/calls.
'use strict';

(() => {
  const { api, el, badge, fmtTime, fmtDuration } = CC;
  const form = document.getElementById('filters');
  const body = document.querySelector('#calls tbody');
  const more = document.getElementById('more');
  const PAGE = 50;
  let offset = 0;
  let shown = 0;

  function filters() {
    const params = new URLSearchParams(location.search);
    for (const field of form.elements) if (field.name && params.has(field.name)) field.value = params.get(field.name);
    return params;
  }

  // The API returns a list, or an object holding one.
  function rowsOf(reply) {
    if (Array.isArray(reply)) return reply;
    return reply.calls || reply.items || reply.results || [];
  }

  function sentimentOf(call) {
    return call.sentiment || (call.summary && call.summary.sentiment) || '';
  }

  // Filters are also applied here, so the list is right whatever the API supports.
  function keep(call, params) {
    if (params.get('channel') && call.channel !== params.get('channel')) return false;
    if (params.get('status') && (call.status || '') !== params.get('status')) return false;
    if (params.get('sentiment') && sentimentOf(call) !== params.get('sentiment')) return false;
    if (params.get('customer_id') && call.customer_id !== params.get('customer_id')) return false;
    const started = call.started_at ? new Date(call.started_at) : null;
    if (started && params.get('since') && started < new Date(params.get('since') + 'T00:00:00')) return false;
    if (started && params.get('until') && started > new Date(params.get('until') + 'T23:59:59.999')) return false;
    const q = (params.get('q') || '').trim().toLowerCase();
    if (q && ![call.call_id, call.from_number, call.to_number, call.customer_id].some((v) => v && String(v).toLowerCase().includes(q))) return false;
    return true;
  }

  function row(call) {
    const href = '/dashboard/calls/' + encodeURIComponent(call.call_id);
    return el('tr', { 'data-call-id': call.call_id },
      el('td', {}, fmtTime(call.started_at)),
      el('td', {}, badge(call.channel, call.channel)),
      el('td', {}, badge(call.status || '', call.status === 'active' ? 'active' : 'ended')),
      el('td', { class: 'hide-narrow' }, call.from_number || ''),
      el('td', { class: 'hide-narrow' }, call.customer_id || ''),
      el('td', {}, call.turn_count == null ? '' : String(call.turn_count)),
      el('td', { class: 'hide-narrow' }, fmtDuration(call.duration_s)),
      el('td', {}, sentimentOf(call) ? badge(sentimentOf(call)) : ''),
      el('td', {}, el('a', { href }, String(call.call_id).slice(0, 12))));
  }

  async function load(append) {
    const params = filters();
    const query = new URLSearchParams();
    for (const [k, v] of params) if (v) query.set(k, v);
    query.set('limit', PAGE);
    query.set('offset', offset);
    const reply = await api('/api/calls?' + query);
    const rows = rowsOf(reply);
    if (!append) { body.replaceChildren(); shown = 0; }
    const kept = rows.filter((c) => keep(c, params));
    body.append(...kept.map(row));
    shown += kept.length;
    more.hidden = rows.length < PAGE;
    const total = typeof reply.total === 'number' ? reply.total : shown;
    document.getElementById('count').textContent = !shown ? 'No calls match these filters.'
      : total > shown ? 'Showing ' + shown + ' of ' + total + ' calls' : total === 1 ? '1 call' : total + ' calls';
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const field of form.elements) if (field.name && field.value) params.set(field.name, field.value);
    history.pushState(null, '', '?' + params);
    offset = 0;
    load(false).catch(console.error);
  });
  more.addEventListener('click', () => { offset += PAGE; load(true).catch(console.error); });
  window.addEventListener('popstate', () => { offset = 0; load(false).catch(console.error); });
  load(false).catch(console.error);
})();
