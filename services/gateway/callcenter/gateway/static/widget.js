/*
 * Callcenter chat widget: one tag embeds the web chat on any site.
 *
 *   <script src="https://support.example.com/static/widget.js" defer></script>
 *
 * Options (data- attributes on the tag):
 *   data-title="Chat with Ava"      header and launcher label
 *   data-target="#chat"             render inline inside that element instead of a floating launcher
 *   data-open="true"                start with the panel open
 *   data-server="https://…"         gateway base URL (default: where this script was loaded from)
 *
 * Speaks the /chat/ws protocol (see routes/chat.py). When a person takes the conversation over (the
 * agent inbox), their messages arrive as ``agent`` frames and are shown with the agent's name, marked
 * as from a person; ``handoff``, ``agent_joined``, ``agent_left`` and ``no_agent`` frame the change. The conversation (call_id, resume_token and the
 * messages shown) lives in sessionStorage, so a dropped socket or a page reload resumes the same
 * conversation; messages typed while offline are sent once the socket is back.
 *
 * The "Call" button in the header calls the assistant from the microphone (a voice call, channel
 * web_voice, separate from the chat): POST /web-voice/calls on the gateway (with the chat's call_id and
 * resume_token, so a visitor verified in the chat stays verified on the call) gives the voice pipeline's
 * socket URL and a single-use token; the socket then carries 16 kHz 16-bit PCM both ways (captured by
 * an AudioWorklet, played back in order), and {"type": "clear"} drops queued playback when the caller
 * interrupts. The host element's data-call-state / data-call-id / data-call-audio-bytes (audio received)
 * tell the page how the call goes. See services/voice_pipeline/.../web_call.py for the protocol.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__callcenterWidget) return;
  window.__callcenterWidget = true;

  var opts = script.dataset || {};
  var server = (opts.server || new URL(script.src, location.href).origin).replace(/\/$/, '');
  var title = opts.title || 'Chat with us';
  var STORE = 'callcenter-chat:' + server;
  var MAX_KEPT = 200;

  var CSS = [
    ':host { all: initial; display: block; }',
    '.inline { height: 100%; }',
    '* { box-sizing: border-box; }',
    '.cc { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; }',
    '.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0; border-radius: 28px;',
    '  padding: 14px 20px; background: #0b4ea2; color: #fff; font: inherit; font-weight: 600; cursor: pointer;',
    '  box-shadow: 0 6px 20px rgba(0,0,0,.25); }',
    '.launcher:focus-visible, button:focus-visible, textarea:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }',
    '.panel { display: flex; flex-direction: column; background: #fff; border: 1px solid #d8dbe2; overflow: hidden; }',
    '.floating .panel { position: fixed; right: 20px; bottom: 20px; z-index: 2147483001; width: 380px; height: min(600px, calc(100vh - 40px));',
    '  border-radius: 12px; box-shadow: 0 10px 40px rgba(0,0,0,.3); }',
    '.inline .panel { width: 100%; height: 100%; min-height: 320px; border-radius: 10px; }',
    '.panel[hidden] { display: none; }',
    'header { display: flex; align-items: center; gap: 8px; padding: 12px 14px; background: #0b4ea2; color: #fff; }',
    'header h2 { flex: 1; margin: 0; font-size: 16px; }',
    '.status { font-size: 12px; opacity: .9; }',
    '.end { background: transparent; color: #fff; border: 1px solid rgba(255,255,255,.6); border-radius: 6px; font: inherit; font-size: 13px; padding: 3px 8px; cursor: pointer; }',
    '.end[hidden] { display: none; }',
    '.call { background: #fff; color: #0b4ea2; border: 0; border-radius: 6px; font: inherit; font-size: 13px; font-weight: 600; padding: 4px 10px; cursor: pointer; }',
    '.call.live { background: #c62828; color: #fff; }',
    '.call:disabled { opacity: .6; cursor: default; }',
    '.callbar { padding: 6px 14px; background: #fff4e5; color: #6b3a00; font-size: 13px; border-bottom: 1px solid #f1d3a8; }',
    '.callbar[hidden] { display: none; }',
    '.close { background: transparent; color: #fff; border: 0; font-size: 22px; line-height: 1; cursor: pointer; padding: 2px 8px; border-radius: 6px; }',
    '.log { flex: 1; overflow-y: auto; padding: 12px; background: #f7f8fa; }',
    '.msg { max-width: 85%; margin: 6px 0; padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }',
    '.msg.you { margin-left: auto; background: #0b4ea2; color: #fff; border-bottom-right-radius: 4px; }',
    '.msg.bot { background: #fff; border: 1px solid #e1e4ea; border-bottom-left-radius: 4px; }',
    '.msg.agent { background: #eef7ee; border: 1px solid #b9dcb9; border-bottom-left-radius: 4px; }',
    '.msg.agent .who { display: block; font-size: 12px; font-weight: 600; color: #2e6b2e; margin-bottom: 2px; }',
    '.msg.pending { opacity: .7; }',
    '.note { text-align: center; color: #5b6272; font-size: 13px; margin: 8px 0; }',
    '.tool { color: #5b6272; font-size: 13px; font-style: italic; margin: 4px 0; }',
    '.typing { display: flex; gap: 4px; align-items: center; padding: 4px 14px 0; min-height: 22px; color: #5b6272; font-size: 13px; }',
    '.typing[hidden] { display: none; }',
    '.dots span { display: inline-block; width: 6px; height: 6px; margin-right: 3px; border-radius: 50%; background: #8a90a0;',
    '  animation: cc-blink 1.2s infinite ease-in-out; }',
    '.dots span:nth-child(2) { animation-delay: .2s; } .dots span:nth-child(3) { animation-delay: .4s; }',
    '@keyframes cc-blink { 0%, 80%, 100% { opacity: .3; } 40% { opacity: 1; } }',
    '@media (prefers-reduced-motion: reduce) { .dots span { animation: none; } }',
    'form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e1e4ea; background: #fff; }',
    'textarea { flex: 1; resize: none; font: inherit; padding: 9px 10px; border: 1px solid #b8bdc9; border-radius: 8px; min-height: 42px; max-height: 120px; }',
    '.send { border: 0; border-radius: 8px; padding: 0 16px; background: #0b4ea2; color: #fff; font: inherit; font-weight: 600; cursor: pointer; }',
    '.send:disabled { background: #8a9bb5; cursor: default; }',
    '.restart { display: block; margin: 8px auto; border: 1px solid #0b4ea2; background: #fff; color: #0b4ea2; border-radius: 8px; padding: 6px 12px; font: inherit; cursor: pointer; }',
    '.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0,0,0,0); border: 0; }',
    '@media (max-width: 480px) {',
    '  .floating .panel { right: 0; bottom: 0; width: 100vw; height: 100vh; height: 100dvh; border-radius: 0; }',
    '  .launcher { right: 12px; bottom: 12px; }',
    '  .msg { max-width: 92%; }',
    '}'
  ].join('\n');

  // --- state kept across reconnects and reloads -----------------------------------------------
  function load() {
    try { return JSON.parse(sessionStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
  }
  var state = load();
  state.messages = state.messages || [];
  function save() {
    if (state.messages.length > MAX_KEPT) state.messages = state.messages.slice(-MAX_KEPT);
    try { sessionStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  // --- DOM ------------------------------------------------------------------------------------
  var inline = opts.target ? document.querySelector(opts.target) : null;
  var host = document.createElement('div');
  host.setAttribute('data-callcenter-widget', '');
  if (inline) host.style.height = '100%';
  (inline || document.body).appendChild(host);
  var root = host.attachShadow({ mode: 'open' });
  var uid = 'cc' + Math.random().toString(36).slice(2, 8);
  root.innerHTML =
    '<style>' + CSS + '</style>' +
    '<div class="cc ' + (inline ? 'inline' : 'floating') + '">' +
    (inline ? '' : '<button class="launcher" type="button" aria-haspopup="dialog" aria-expanded="false"></button>') +
    '<section class="panel" role="' + (inline ? 'region' : 'dialog') + '" aria-labelledby="' + uid + '-title"' + (inline ? '' : ' hidden') + '>' +
    '  <header><div style="flex:1"><h2 id="' + uid + '-title"></h2><div class="status" aria-live="polite"></div></div>' +
    '<button class="call" type="button" aria-label="Call us (uses your microphone)">Call</button>' +
    '<button class="end" type="button">End chat</button>' +
    (inline ? '' : '<button class="close" type="button" aria-label="Close chat">&times;</button>') + '</header>' +
    '  <div class="callbar" role="status" aria-live="polite" hidden></div>' +
    '  <div class="log" role="log" aria-live="polite" aria-relevant="additions" aria-label="Conversation" tabindex="0"></div>' +
    '  <div class="typing" role="status" hidden><span class="dots" aria-hidden="true"><span></span><span></span><span></span></span><span class="typing-text">Assistant is typing…</span></div>' +
    '  <form novalidate><label class="sr-only" for="' + uid + '-input">Your message</label>' +
    '    <textarea id="' + uid + '-input" rows="1" placeholder="Type your message…" autocomplete="off" aria-describedby="' + uid + '-hint"></textarea>' +
    '    <span id="' + uid + '-hint" class="sr-only">Press Enter to send, Shift+Enter for a new line.</span>' +
    '    <button class="send" type="submit">Send</button></form>' +
    '</section></div>';

  var $ = function (sel) { return root.querySelector(sel); };
  var launcher = $('.launcher');
  var panel = $('.panel');
  var log = $('.log');
  var typing = $('.typing');
  var statusEl = $('.status');
  var form = $('form');
  var input = $('textarea');
  var endBtn = $('.end');
  $('h2').textContent = title;
  if (launcher) launcher.textContent = title;

  function scroll() { log.scrollTop = log.scrollHeight; }
  function render(m) {
    var div = document.createElement('div');
    div.className = m.role === 'note' ? 'note' : m.role === 'tool' ? 'tool' : 'msg ' + m.role;
    if (m.role === 'you' || m.role === 'bot') {
      var who = document.createElement('span');
      who.className = 'sr-only';
      who.textContent = m.role === 'you' ? 'You said: ' : 'Assistant: ';
      div.appendChild(who);
    } else if (m.role === 'agent') {
      var person = document.createElement('span');
      person.className = 'who';
      person.textContent = (m.name || 'Agent') + ' · agent';
      div.appendChild(person);
    }
    var body = document.createElement('span');
    body.className = 'text';
    body.textContent = m.text;
    div.appendChild(body);
    log.appendChild(div);
    scroll();
    return div;
  }
  function add(role, text, keep, name) {
    var m = { role: role, text: text };
    if (name) m.name = name;
    if (keep !== false) { state.messages.push(m); save(); }
    return render(m);
  }
  state.messages.forEach(render);

  // --- socket ---------------------------------------------------------------------------------
  var ws = null;
  var retries = 0;
  var retryTimer = null;
  var outbox = [];           // messages typed while disconnected
  var streaming = null;      // {el, text} of the reply being streamed
  var ended = false;
  var started = false;

  function setStatus(text) {
    statusEl.textContent = text;
    endBtn.hidden = ended || !state.call_id;
  }
  function showTyping(on) {
    typing.hidden = !on;
    if (!on) typing.querySelector('.typing-text').textContent = 'Assistant is typing…';
    log.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function url() {
    var base = server.replace(/^http/, 'ws') + '/chat/ws';
    if (state.call_id && state.resume_token) {
      base += '?call_id=' + encodeURIComponent(state.call_id) + '&resume_token=' + encodeURIComponent(state.resume_token);
    }
    return base;
  }

  function connect() {
    clearTimeout(retryTimer);
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) return;
    started = true;
    ended = false;
    setStatus(retries ? 'Reconnecting…' : 'Connecting…');
    var sock = new WebSocket(url());
    ws = sock;
    sock.onopen = function () { retries = 0; };
    sock.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      finishStreaming(true);
      if (ended) { setStatus('Conversation ended'); return; }
      setStatus('Connection lost. Reconnecting…');
      var delay = Math.min(10000, 500 * Math.pow(2, retries++));
      retryTimer = setTimeout(connect, delay);
    };
  }

  function finishStreaming(interrupted) {
    showTyping(false);
    if (!streaming) return;
    if (streaming.text) {
      state.messages.push({ role: 'bot', text: streaming.text });
      save();
    } else if (streaming.el) {
      streaming.el.remove();
    }
    if (interrupted && streaming.el) streaming.el.classList.remove('pending');
    streaming = null;
  }

  function flush() {
    while (outbox.length && ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ type: 'message', text: outbox.shift() }));
    }
  }

  function handle(msg) {
    switch (msg.type) {
      case 'session':
        if (state.call_id && state.call_id !== msg.call_id) {
          add('note', 'A new conversation has started.');
        }
        state.call_id = msg.call_id;
        state.resume_token = msg.resume_token;
        save();
        if (msg.greeting && !msg.resumed) add('bot', msg.greeting);
        setStatus('Online');
        flush();
        break;
      case 'typing':
        showTyping(true);
        streaming = { el: null, text: '' };
        break;
      case 'delta':
        if (!streaming) streaming = { el: null, text: '' };
        if (!streaming.el) {
          streaming.el = render({ role: 'bot', text: '' });
          streaming.el.classList.add('pending');
        }
        streaming.text += msg.text;
        streaming.el.querySelector('.text').textContent = streaming.text;
        scroll();
        break;
      case 'tool':
        if (msg.status === 'started') {
          typing.querySelector('.typing-text').textContent = 'Looking that up' + (msg.name ? ' (' + msg.name.replace(/_/g, ' ') + ')' : '') + '…';
        }
        break;
      case 'done':
        if (!streaming) streaming = { el: null, text: '' };
        streaming.text = msg.text || streaming.text;
        if (!streaming.el) streaming.el = render({ role: 'bot', text: '' });
        streaming.el.querySelector('.text').textContent = streaming.text;
        streaming.el.classList.remove('pending');
        finishStreaming(false);
        scroll();
        break;
      case 'error':
        finishStreaming(true);
        add('note', msg.message || 'Something went wrong.');
        break;
      case 'ended':
        ended = true;
        finishStreaming(true);
        add('note', 'This conversation has ended.');
        state = { messages: state.messages };
        save();
        setStatus('Conversation ended');
        offerRestart();
        break;
      case 'held':
        // kept for the colleague who is (or will be) with you; no assistant reply comes
        finishStreaming(true);
        break;
      case 'handoff':
        add('note', msg.text || 'Connecting you with a colleague…');
        setStatus('Waiting for a colleague…');
        break;
      case 'agent_joined':
        add('note', msg.text || ('You\'re now talking with ' + msg.agent + '.'));
        setStatus('Talking with ' + msg.agent);
        break;
      case 'agent':
        finishStreaming(true);
        add('agent', msg.text || '', true, msg.agent);
        break;
      case 'agent_left':
        add('note', msg.text || (msg.agent + ' has left the conversation.'));
        setStatus('Online');
        break;
      case 'no_agent':
        add('bot', msg.text || '');
        setStatus('Online');
        break;
      case 'reconnect':
        // The server is restarting: come back straight away, to another replica.
        retries = 0;
        break;
      case 'pong':
        break;
    }
  }

  function offerRestart() {
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'restart';
    btn.textContent = 'Start a new conversation';
    btn.addEventListener('click', function () {
      btn.remove();
      state = { messages: [] };
      save();
      log.textContent = '';
      connect();
      input.focus();
    });
    log.appendChild(btn);
    scroll();
  }

  function send(text) {
    text = text.trim();
    if (!text) return;
    add('you', text);
    if (ended) { state = { messages: state.messages }; connect(); }
    if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ type: 'message', text: text }));
    } else {
      outbox.push(text);
      if (!ws) connect();
    }
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    send(input.value);
    input.value = '';
    input.style.height = '';
    input.focus();
  });
  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  });
  input.addEventListener('input', function () {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 120) + 'px';
  });

  // --- open / close ---------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    if (launcher) { launcher.hidden = true; launcher.setAttribute('aria-expanded', 'true'); }
    state.open = true; save();
    if (!started) connect();
    input.focus();
    scroll();
  }
  function close() {
    if (!launcher) return;
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute('aria-expanded', 'false');
    state.open = false; save();
    launcher.focus();
  }
  endBtn.addEventListener('click', function () {
    if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ type: 'end' }));
    } else {
      ended = true;
      state = { messages: state.messages };
      save();
      add('note', 'This conversation has ended.');
      setStatus('Conversation ended');
      offerRestart();
    }
    input.focus();
  });
  if (launcher) {
    launcher.addEventListener('click', open);
    $('.close').addEventListener('click', close);
    panel.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') { event.preventDefault(); close(); }
    });
  }
  if (inline || opts.open === 'true' || state.open || state.call_id) {
    if (inline) { connect(); } else if (opts.open === 'true' || state.open) { open(); } else { connect(); }
  }

  // --- voice call from the microphone (channel web_voice) ---------------------------------------
  var RATE = 16000;          // the socket's PCM rate, both ways
  var FRAME = 320;           // 20 ms per frame sent
  var MIC_WORKLET = [
    'class CcMic extends AudioWorkletProcessor {',
    '  constructor() { super(); this.step = sampleRate / ' + RATE + '; this.next = this.step; this.t = 0;',
    '    this.acc = 0; this.n = 0; this.out = new Int16Array(' + FRAME + '); this.k = 0; }',
    '  process(inputs) {',
    '    var x = inputs[0] && inputs[0][0];',
    '    if (!x) return true;',
    '    for (var i = 0; i < x.length; i++) {',
    '      this.acc += x[i]; this.n++; this.t++;',
    '      if (this.t >= this.next) {',  // box filter: the mean of the samples one output sample spans
    '        var v = Math.max(-1, Math.min(1, this.acc / this.n));',
    '        this.out[this.k++] = v < 0 ? v * 32768 : v * 32767;',
    '        this.acc = 0; this.n = 0; this.next += this.step;',
    '        if (this.k === this.out.length) { this.port.postMessage(this.out.buffer, [this.out.buffer]);',
    '          this.out = new Int16Array(' + FRAME + '); this.k = 0; }',
    '      }',
    '    }',
    '    return true;',
    '  }',
    '}',
    "registerProcessor('cc-mic', CcMic);"
  ].join('\n');
  var callBtn = $('.call');
  var callbar = $('.callbar');
  var call = null;           // {ctx, stream, mic, ws, playAt, playing, live}

  function callInfo(name, value) { host.setAttribute('data-call-' + name, String(value)); }
  function callNote(text) { callbar.hidden = !text; callbar.textContent = text || ''; }
  function callButton(live, busy) {
    callBtn.textContent = live ? 'Hang up' : 'Call';
    callBtn.classList.toggle('live', live);
    callBtn.setAttribute('aria-label', live ? 'Hang up the call' : 'Call us (uses your microphone)');
    callBtn.disabled = !!busy;
  }

  function stopPlayback() {
    if (!call) return;
    call.playing.forEach(function (src) { try { src.stop(); } catch (e) { /* already ended */ } });
    call.playing = [];
    call.playAt = 0;
  }

  function play(data) {
    var pcm = new Int16Array(data);
    if (!pcm.length) return;
    var buf = call.ctx.createBuffer(1, pcm.length, RATE);
    var ch = buf.getChannelData(0);
    for (var i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    var src = call.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(call.ctx.destination);
    var at = Math.max(call.ctx.currentTime + 0.02, call.playAt);
    src.start(at);
    call.playAt = at + buf.duration;
    call.playing.push(src);
    src.onended = function () { if (call) call.playing = call.playing.filter(function (s) { return s !== src; }); };
  }

  function endCall(note) {
    if (!call) return;
    var c = call;
    call = null;
    c.playing.forEach(function (src) { try { src.stop(); } catch (e) { /* already ended */ } });
    if (c.ws && c.ws.readyState <= 1) {
      if (c.ws.readyState === 1) { try { c.ws.send(JSON.stringify({ type: 'hangup' })); } catch (e) { /* closing */ } }
      c.ws.close();
    }
    if (c.stream) c.stream.getTracks().forEach(function (t) { t.stop(); });
    if (c.mic) c.mic.port.onmessage = null;
    c.ctx.close();
    callInfo('state', 'ended');
    callButton(false, false);
    callNote(note || 'Call ended.');
  }

  function startCall() {
    if (call) return;
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || !navigator.mediaDevices || !window.AudioWorkletNode) {
      callNote('Calling needs a browser with microphone support.');
      return;
    }
    var ctx;
    try { ctx = new Ctx({ sampleRate: RATE }); } catch (e) { ctx = new Ctx(); }  // made in the click: may play
    var c = call = { ctx: ctx, stream: null, mic: null, ws: null, playAt: 0, playing: [], live: false };
    callInfo('state', 'connecting');
    callInfo('audio-bytes', 0);
    callButton(true, false);
    callNote('Calling…');
    var micUrl = URL.createObjectURL(new Blob([MIC_WORKLET], { type: 'application/javascript' }));
    // the chat this call comes from, proven by the chat's own token: a visitor verified in the chat
    // stays verified on the call (the gateway checks the token; nothing else here is believed)
    var chat = state.call_id && state.resume_token ? { call_id: state.call_id, resume_token: state.resume_token } : null;
    fetch(server + '/web-voice/calls', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ chat: chat })
    })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.error || 'The call could not start.');
          return body;
        });
      })
      .then(function (grant) {
        if (call !== c) throw null;
        callInfo('id', grant.call_id);
        // Echo cancellation keeps the assistant's own voice out of the microphone; the browser's noise
        // suppression stays off: it clips the starts of words the speech recognizer needs (the
        // pipeline's voice activity detection already ignores background noise).
        return navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true }
        }).then(function (stream) {
          c.stream = stream;
          return ctx.audioWorklet.addModule(micUrl);
        }).then(function () {
          if (call !== c) throw null;
          c.mic = new AudioWorkletNode(ctx, 'cc-mic');
          ctx.createMediaStreamSource(c.stream).connect(c.mic);
          c.mic.port.onmessage = function (event) {
            if (c.live && c.ws.readyState === 1) c.ws.send(event.data);
          };
          openCallSocket(c, grant);
        });
      })
      .catch(function (err) {
        if (err === null) return;  // hung up meanwhile
        endCall(err && err.name === 'NotAllowedError' ? 'The call needs your microphone.' : (err && err.message) || 'The call could not start.');
      })
      .then(function () { URL.revokeObjectURL(micUrl); });
  }

  function openCallSocket(c, grant) {
    var sock = new WebSocket(grant.url);
    sock.binaryType = 'arraybuffer';
    c.ws = sock;
    var bytes = 0;
    sock.onopen = function () { sock.send(JSON.stringify({ type: 'start', token: grant.token })); };
    sock.onmessage = function (event) {
      if (call !== c) return;
      if (typeof event.data !== 'string') {
        bytes += event.data.byteLength;
        callInfo('audio-bytes', bytes);
        play(event.data);
        return;
      }
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === 'started') {
        c.live = true;
        callInfo('state', 'live');
        callNote('On a call with the assistant. Speak any time.');
      } else if (msg.type === 'clear') {
        stopPlayback();  // the caller interrupted: drop what was queued
      }
    };
    sock.onclose = function () {
      if (call !== c) return;
      // let the goodbye finish playing before the context closes
      var left = Math.max(0, c.playAt - c.ctx.currentTime);
      setTimeout(function () { if (call === c) endCall(c.live ? 'Call ended.' : 'The call could not be connected.'); }, left * 1000);
    };
  }

  callBtn.addEventListener('click', function () {
    if (call) endCall('Call ended.'); else startCall();
  });

  window.CallcenterChat = { open: open, close: close, send: send, call: startCall, hangUp: function () { endCall('Call ended.'); } };
})();
