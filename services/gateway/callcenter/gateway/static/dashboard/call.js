// One call: GET /api/calls/{id} (transcript, tool calls, summary, sentiment, post-call steps, ticket).
'use strict';

(() => {
  const { api, el, badge, fmtTime, fmtDuration } = CC;
  const callId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop());
  document.getElementById('call-h').textContent = 'Call ' + callId;

  // Accept {call: {...}, turns, summary, steps, tickets} as well as the call's fields at the top.
  function normalise(reply) {
    const call = reply.call || reply;
    const pick = (...names) => { for (const n of names) if (reply[n] != null) return reply[n]; for (const n of names) if (call[n] != null) return call[n]; return null; };
    let steps = pick('steps', 'post_call_steps', 'step_status', 'post_call') || [];
    if (!Array.isArray(steps)) steps = Object.entries(steps).map(([step, v]) => (typeof v === 'object' ? { step, ...v } : { step, status: v }));
    let tickets = pick('tickets', 'ticket') || [];
    if (!Array.isArray(tickets)) tickets = [tickets];
    let turns = pick('turns', 'transcript') || [];
    if (!Array.isArray(turns)) turns = turns.turns || [];
    return {
      call, turns, summary: pick('summary'), steps, tickets,
      deadLetters: pick('dead_letters') || [], email: pick('email'), crm: pick('crm_activities') || [],
    };
  }

  function facts(call) {
    const rows = [
      ['Channel', badge(call.channel, call.channel)],
      ['Status', badge(call.status || '', call.status === 'active' ? 'active' : 'ended')],
      ['Started', fmtTime(call.started_at)],
      ['Ended', fmtTime(call.ended_at)],
      ['Reason', call.end_reason || ''],
      ['Duration', fmtDuration(call.duration_s)],
      ['Turns', call.turn_count == null ? '' : String(call.turn_count)],
      ['From', call.from_number || ''],
      ['To', call.to_number || ''],
      ['Customer', call.customer_id || ''],
    ];
    document.getElementById('facts').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  function handoff(h) {
    // The voice pipeline's note for the agent a caller was transferred to.
    if (!h) return;
    document.getElementById('handoff-card').hidden = false;
    document.getElementById('handoff').replaceChildren(
      el('p', { 'data-handoff': '' }, h.summary || ''),
      el('dl', { class: 'facts' },
        el('dt', {}, 'Reason'), el('dd', {}, h.reason || ''),
        el('dt', {}, 'To'), el('dd', {}, h.to || '')));
  }

  function summary(s) {
    if (!s) return;
    const text = typeof s === 'string' ? s : s.summary;
    document.getElementById('summary').replaceChildren(
      el('p', { 'data-summary': '' }, text || ''),
      typeof s === 'object' ? el('dl', { class: 'facts' },
        el('dt', {}, 'Sentiment'), el('dd', {}, badge(s.sentiment)),
        el('dt', {}, 'Satisfaction'), el('dd', {}, s.satisfaction == null ? '' : s.satisfaction + ' / 5'),
        el('dt', {}, 'Resolved'), el('dd', {}, s.resolved ? 'yes' : 'no'),
        el('dt', {}, 'Topics'), el('dd', {}, (s.topics || []).join(', ')),
        el('dt', {}, 'Follow-up'), el('dd', {}, s.follow_up_needed ? (s.follow_up || 'needed') : 'none')) : null);
  }

  function steps(list, deadLetters) {
    const body = document.querySelector('#steps tbody');
    const rows = list.map((s) => el('tr', { 'data-step': s.step || s.name },
      el('td', {}, s.step || s.name || ''), el('td', {}, badge(s.status || 'pending', s.status || 'pending')), el('td', { class: 'small' }, s.detail || s.reason || '')));
    for (const d of deadLetters) {
      rows.push(el('tr', {}, el('td', {}, d.consumer || ''), el('td', {}, badge('dead', 'dead')), el('td', { class: 'small' }, (d.reason || '') + ' (' + d.attempts + ' attempts)')));
    }
    body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'No post-call step has run yet.'))]));
  }

  function tickets(list) {
    if (!list.length) return;
    document.getElementById('tickets').replaceChildren(...list.map((t) => el('div', { 'data-ticket': t.ticket_id },
      el('div', {}, el('strong', {}, t.ticket_id || ''), ' ', badge(t.priority || '', t.priority === 'high' || t.priority === 'urgent' ? 'negative' : 'neutral'), ' ', t.status || ''),
      el('div', {}, t.subject || ''),
      t.body ? el('p', { class: 'small muted wrap' }, t.body) : null)));
  }

  function followUp(email, crm) {
    if (!email && !crm.length) return;
    document.getElementById('followup').replaceChildren(
      email ? el('div', { 'data-email': '' },
        el('div', {}, el('strong', {}, 'Email to '), email.to_address || '', ' · ', fmtTime(email.sent_at)),
        el('div', {}, email.subject || ''),
        el('details', {}, el('summary', {}, 'Text'), el('pre', { class: 'json' }, email.body_text || ''))) : el('p', { class: 'empty' }, 'No email sent.'),
      ...crm.map((a) => el('div', { class: 'small', style: 'margin-top:8px' },
        el('strong', {}, 'CRM (' + a.adapter + '): '), a.subject || '', a.external_id ? ' · ' + a.external_id : '')));
  }

  function turns(list) {
    if (!list.length) return;
    const sorted = [...list].sort((a, b) => a.turn_index - b.turn_index);
    document.getElementById('transcript').replaceChildren(...sorted.map((t) => {
      const lat = t.latency || {};
      const parts = Object.entries(lat).filter(([, v]) => typeof v === 'number' && v > 0).map(([k, v]) => k.replace(/_ms$/, '').replace(/_/g, ' ') + ' ' + Math.round(v) + ' ms');
      return el('div', { class: 'turn', 'data-turn': t.turn_index },
        el('div', { class: 'small muted' }, 'Turn ' + (t.turn_index + 1) + (t.occurred_at ? ' · ' + fmtTime(t.occurred_at) : '') + (parts.length ? ' · ' + parts.join(', ') : '')),
        t.user_text ? el('div', { class: 'u' }, t.user_text) : null,
        (t.tool_calls || []).map((tc) => el('div', { class: 'tools' },
          tc.success === false ? el('span', { class: 'err' }, '✗ ') : '✓ ',
          el('code', {}, tc.name), tc.duration_ms != null ? ' · ' + Math.round(tc.duration_ms) + ' ms' : '',
          el('details', {}, el('summary', {}, 'arguments and result'),
            el('pre', { class: 'json' }, JSON.stringify({ arguments: tc.arguments, result: tc.result, error: tc.error }, null, 2))))),
        el('div', { class: 'a' }, t.assistant_text || '', t.interrupted ? ' (interrupted)' : ''));
    }));
  }

  let refreshes = 0;
  async function load() {
    let reply;
    try {
      reply = await api('/api/calls/' + encodeURIComponent(callId));
    } catch (err) {
      const e = document.getElementById('error');
      e.hidden = false;
      e.textContent = 'Could not load this call (' + err.message + ').';
      return;
    }
    const d = normalise(reply);
    facts(d.call);
    summary(d.summary);
    handoff(reply.handoff);
    steps(d.steps, d.deadLetters);
    tickets(d.tickets);
    followUp(d.email, d.crm);
    turns(d.turns);
    // Keep refreshing while the call or its post-call work is still going on.
    const busy = d.call.status !== 'ended' || !d.summary || d.steps.some((s) => s.status === 'pending');
    if (busy && ++refreshes < 200) setTimeout(load, 3000);
  }
  load();
})();
