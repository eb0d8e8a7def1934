// Caught mail: GET /api/mail, newest first, each message's plain text shown as text.
'use strict';

(() => {
  const { api, el, fmtTime } = CC;
  const form = document.getElementById('mail-filter');
  const list = document.getElementById('mail-list');

  function view(mail) {
    return el('article', { class: 'card mail', 'data-mail-id': mail.id },
      el('h3', {}, mail.subject || '(no subject)'),
      el('p', { class: 'small muted' },
        'To ', (mail.rcpt_to || []).join(', '), ' · from ', mail.mail_from, ' · ', fmtTime(mail.received_at)),
      el('pre', { class: 'mail-body' }, mail.body_text || ''));
  }

  async function load() {
    const to = new URLSearchParams(location.search).get('to') || '';
    form.elements.to.value = to;
    const reply = await api('/api/mail' + (to ? '?to=' + encodeURIComponent(to) : ''));
    list.replaceChildren(...reply.items.map(view));
    document.getElementById('mail-count').textContent =
      reply.total ? reply.total + (reply.total === 1 ? ' message' : ' messages') : 'No mail caught yet.';
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const to = form.elements.to.value.trim();
    history.pushState(null, '', to ? '?to=' + encodeURIComponent(to) : location.pathname);
    load().catch(console.error);
  });
  window.addEventListener('popstate', () => load().catch(console.error));
  load().catch(console.error);
})();
