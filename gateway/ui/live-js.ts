// The dashboard's push-channel client (served as /ui/live.js, loaded before app.js): one WebSocket to
// /ui/api/live (gateway/ui/live.ts), the admin token offered as a subprotocol, reconnects with capped
// exponential backoff, and a ping every 25 s so a silently dead link (a laptop that slept) is noticed.
// Plain ES2017, free of backticks and dollar-brace so it embeds verbatim in this String.raw literal.
export const LIVE_JS = String.raw`
'use strict';
window.OutpostLive = (function () {
  var PROTOCOL = 'outpost.live.v1';
  var PING_MS = 25000;
  var SILENCE_MS = 35000; // nothing heard for this long (not even a pong): the link is dead
  var BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  function base64url(s) {
    var bytes = new TextEncoder().encode(s);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  /**
   * opts.token, opts.onNotice(topics) (also called once per (re)connect with every topic: what changed while
   * the channel was down is unknown), opts.onState(state, retryMs) with state 'connecting' | 'live' | 'down'.
   */
  function connect(opts) {
    var ws = null;
    var stopped = false;
    var retry = null;
    var keepalive = null;
    var attempt = 0;
    var heard = 0;

    function open() {
      retry = null;
      opts.onState('connecting');
      var url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/ui/api/live';
      try {
        ws = new WebSocket(url, [PROTOCOL, 'outpost.token.' + base64url(opts.token)]);
      } catch (e) {
        ws = null;
        return down();
      }
      ws.onopen = function () { heard = Date.now(); };
      ws.onmessage = function (ev) {
        heard = Date.now();
        if (ev.data === 'pong') return;
        var m;
        try { m = JSON.parse(ev.data); } catch (e) { return; }
        if (m.type === 'hello') {
          attempt = 0;
          opts.onState('live');
          opts.onNotice(['agents', 'acls', 'discovery']);
        } else if (m.type === 'changed' && Array.isArray(m.topics)) {
          opts.onNotice(m.topics);
        }
      };
      ws.onclose = function () { drop(); if (!stopped) down(); };
      keepalive = setInterval(function () {
        if (!ws || ws.readyState !== WebSocket.OPEN) return;
        if (Date.now() - heard > SILENCE_MS) { drop(); down(); return; }
        ws.send('ping');
      }, PING_MS);
    }

    // forgets the socket without waiting for a close handshake a dead link would never finish
    function drop() {
      clearInterval(keepalive);
      keepalive = null;
      if (!ws) return;
      var old = ws;
      ws = null;
      old.onopen = old.onmessage = old.onclose = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }

    function down() {
      if (retry) return;
      var base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt++;
      var wait = Math.round(base * (0.8 + Math.random() * 0.4)); // jitter: many tabs do not redial together
      opts.onState('down', wait);
      retry = setTimeout(open, wait);
    }

    open();
    return {
      close: function () {
        stopped = true;
        clearTimeout(retry);
        retry = null;
        drop();
      },
    };
  }

  return { connect: connect };
})();
`;
