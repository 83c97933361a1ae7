// The dashboard's client script (served as /ui/app.js): plain ES2017, no framework, no build step.
// Kept free of backticks and dollar-brace so it embeds verbatim in this String.raw literal.
export const APP_JS = String.raw`
'use strict';
// Outpost dashboard client: re-reads the admin REST API when the gateway's push channel (live.js) says
// something changed, with the token kept in sessionStorage; polls slowly only while that channel is down.
// Every value from the fleet is set with textContent, never as HTML.
(function () {
  var SLOW_POLL_MS = 30000;
  var WINDOW_MS = 180000; // what the charts and sparklines show: the last 3 minutes
  var SAMPLE_MIN_MS = 1000; // re-reads closer than this replace the newest sample instead of adding one
  var CLOCK_MS = 5000; // redraw (no request): "s ago" and the charts' time axis move on while nothing changes
  var token = sessionStorage.getItem('outpost-admin-token') || '';
  var pollTimer = null;
  var clockTimer = null;
  var live = null;
  var last = null; // {list, events}: the last answers, redrawn by the clock
  var refreshing = null;
  var again = null; // topics noticed while a refresh ran: one more refresh after it
  var samples = {}; // agent id + LUN path → [{t, read, write, rpo}] for the charts (charts.js) and sparklines
  var Charts = window.OutpostCharts;
  var knownTargets = [];
  var agentNames = {}; // id → name, from the last poll
  var seenChapFailures = {}; // agent id → count at the last poll (a rise becomes an event here)
  var localEvents = [];

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '' : String(c);
      tr.appendChild(td);
    });
    return tr;
  }
  function fill(tableId, rows, empty, cols) {
    var tb = $(tableId).querySelector('tbody');
    // column names on each cell: narrow screens show every row as a card of "name: value" lines
    var heads = Array.prototype.map.call($(tableId).querySelectorAll('thead th'), function (th) { return th.textContent; });
    tb.replaceChildren();
    rows.forEach(function (r) {
      Array.prototype.forEach.call(r.children, function (td, i) { if (heads[i]) td.setAttribute('data-label', heads[i]); });
      tb.appendChild(r);
    });
    if (!rows.length) {
      var tr = document.createElement('tr');
      var td = el('td', empty, 'muted');
      td.colSpan = cols;
      tr.appendChild(td);
      tb.appendChild(tr);
    }
  }
  function bytes(n) {
    if (typeof n !== 'number') return '–';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  function ago(iso) {
    if (!iso) return 'never';
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    return new Date(iso).toLocaleString();
  }

  async function api(method, path, body) {
    var init = { method: method, headers: { authorization: 'Bearer ' + token } };
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    var r = await fetch(path, init);
    var data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) { logout('The admin token was refused.'); throw new Error('unauthorized'); }
    if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
    return data;
  }

  // A change answer's push_errors (agents that were sent nothing): said next to the change, by agent name.
  function pushNote(r) {
    if (!r || !Array.isArray(r.push_errors) || !r.push_errors.length) return '';
    return ' Not pushed to ' + r.push_errors.map(function (p) { return (agentNames[p.agent_id] || p.agent_id) + ' (' + p.error + ')'; }).join(', ') + '.';
  }
  function pushedTo(r) {
    return 'policy version ' + r.version + ', pushed to ' + r.pushed_to + ' agent' + (r.pushed_to === 1 ? '' : 's');
  }

  // The agent's assigned targets, each with its Unassign button; served but unassigned ones get no
  // policy at all (an ACL on them reaches nobody), so they are called out.
  function targetsCell(a) {
    var box = document.createElement('div');
    var assigned = Array.isArray(a.assigned_targets) ? a.assigned_targets : [];
    var ul = el('ul', null, 'assigned');
    assigned.forEach(function (t) {
      var li = el('li');
      li.setAttribute('data-assigned', t);
      li.appendChild(el('span', t));
      var b = el('button', 'Unassign', 'secondary small');
      b.type = 'button';
      b.setAttribute('aria-label', 'Unassign ' + t + ' from ' + a.name);
      b.addEventListener('click', function () { unassign(a, t); });
      li.appendChild(b);
      ul.appendChild(li);
    });
    if (assigned.length) box.appendChild(ul); else box.appendChild(el('span', 'none assigned', 'muted'));
    var stray = (a.served_targets || []).filter(function (t) { return assigned.indexOf(t) < 0; });
    if (stray.length) box.appendChild(el('p', 'Serves without assignment (no policy): ' + stray.join(', '), 'warn'));
    return box;
  }

  function fillAgentChoice(agents) {
    var sel = $('assign-agent');
    var want = agents.map(function (a) { return a.id + ' ' + a.name; }).join('\n');
    if (sel.getAttribute('data-agents') === want) return; // rebuilding would reset what the user picked
    var keep = sel.value;
    sel.replaceChildren();
    agents.forEach(function (a) { var o = el('option', a.name); o.value = a.id; sel.appendChild(o); });
    if (agents.some(function (a) { return a.id === keep; })) sel.value = keep;
    sel.setAttribute('data-agents', want);
  }

  /** Samples of each LUN at the time they were read, for the charts: a steady value is not re-sent, so it holds. */
  function ingest(list) {
    var now = Date.now();
    (list.agents || []).forEach(function (a) {
      var st = a.status || {};
      var chap = st.loginFailures && typeof st.loginFailures.authentication_failure === 'number' ? st.loginFailures.authentication_failure : 0;
      var before = seenChapFailures[a.id];
      if (before !== undefined && chap > before) localEvents.push({ at: new Date().toISOString(), kind: 'CHAP failures', agent_id: a.id, detail: (chap - before) + ' new (' + chap + ' since the agent started)' });
      seenChapFailures[a.id] = chap;
      if (!a.connected) return;
      (Array.isArray(st.luns) ? st.luns : []).forEach(function (l) {
        var s = l.stats || {};
        var io = l.io || {};
        var rpo = typeof s.oldest_dirty_age_ms === 'number' ? s.oldest_dirty_age_ms / 1000 : null;
        if (typeof io.write_bps !== 'number' && rpo === null) return;
        var c = samples[a.id + ' ' + l.path] || (samples[a.id + ' ' + l.path] = []);
        var sample = { t: now, read: io.read_bps || 0, write: io.write_bps || 0, rpo: rpo };
        if (c.length && now - c[c.length - 1].t < SAMPLE_MIN_MS) c[c.length - 1] = sample; else c.push(sample);
        while (c.length > 1 && c[1].t < now - WINDOW_MS) c.shift(); // the one before the window starts the line at its edge
      });
    });
  }

  function render(list, events) {
    var now = Date.now();
    var agents = list.agents || [];
    var online = agents.filter(function (a) { return a.connected; }).length;
    $('summary').textContent = online + ' of ' + agents.length + ' agents online · policy version ' + list.policy_version;
    var targets = {};
    var lunRows = [];
    var sessionRows = [];
    var figures = [];
    var jobRows = [];
    fill('agents', agents.map(function (a) {
      var st = a.status || {};
      var sessions = Array.isArray(st.sessions) ? st.sessions : [];
      var portals = Array.isArray(st.portals) ? st.portals : [];
      (a.served_targets || []).concat(a.assigned_targets || []).forEach(function (t) { targets[t] = true; });
      var state = el('span', a.connected ? 'online' : 'offline', a.connected ? 'state-online' : 'state-offline');
      state.setAttribute('data-agent-state', a.connected ? 'online' : 'offline');
      agentNames[a.id] = a.name;
      var policy = el('span', a.applied_version === null ? 'none' : 'v' + a.applied_version + (a.in_sync ? ' (in sync)' : ' (behind)'));
      if (a.last_error) {
        var err = el('span', 'last error: ' + a.last_error, 'error block');
        err.setAttribute('data-last-error', '');
        policy.appendChild(err);
      }
      var chap = st.loginFailures && typeof st.loginFailures.authentication_failure === 'number' ? st.loginFailures.authentication_failure : 0;
      var tr = row([a.name, state, ago(a.last_seen), a.agent_version || '–', policy, targetsCell(a), sessions.filter(function (s) { return s.type === 'Normal'; }).length, portals.join(', ') || '–', el('span', String(chap), chap ? 'warn' : '')]);
      tr.setAttribute('data-agent', a.name);
      (Array.isArray(st.luns) ? st.luns : []).forEach(function (l) {
        var s = l.stats || {};
        var rpo = typeof s.oldest_dirty_age_ms === 'number' ? s.oldest_dirty_age_ms / 1000 : null;
        var c = samples[a.id + ' ' + l.path] || [];
        var h = c.filter(function (x) { return x.rpo !== null && x.t >= now - WINDOW_MS; }).map(function (x) { return x.rpo; });
        if (c.length) figures.push(Charts.lunFigure(a.name, l.path, c, WINDOW_MS, now, a.connected));
        var health = el('span', (l.healthy ? 'ok' : 'error' + (l.error ? ': ' + l.error : '')) + (a.connected ? '' : ' (last report)'), l.healthy && a.connected ? 'state-online' : 'state-offline');
        var lr = row([a.name, l.path + ' (' + l.plugin + ')', health, bytes(s.cached_bytes), bytes(s.dirty_bytes), rpo === null ? '–' : rpo.toFixed(0) + ' s', h.length ? Charts.spark(h, WINDOW_MS) : '–']);
        lr.setAttribute('data-lun', l.path);
        lunRows.push(lr);
      });
      (Array.isArray(st.jobs) ? st.jobs : []).forEach(function (j) {
        var state = el('span', j.state + (j.phase && j.state === 'running' ? ' (' + j.phase + ')' : '') + (j.error ? ': ' + j.error : ''), j.state === 'failed' ? 'error' : j.state === 'done' ? 'state-online' : '');
        var jr = row([a.name, j.kind + ' #' + j.id, j.subject, state, Charts.progressCell(j), j.state === 'running' ? Charts.jobRate(j) : '–',
          j.state === 'running' ? Charts.seconds(j.eta_s === null ? NaN : j.eta_s) : '–']);
        jr.setAttribute('data-job', a.name + ' ' + j.id);
        jr.setAttribute('data-job-state', j.state);
        jobRows.push(jr);
      });
      sessions.filter(function (s) { return s.type === 'Normal'; }).forEach(function (s) {
        sessionRows.push(row([a.name, s.targetName, s.initiatorName, (s.connections || []).map(function (c) { return c.remote + ' → ' + c.local.ip + ':' + c.local.port; }).join(', ')]));
      });
      return tr;
    }), 'No agents enrolled yet (POST /v1/agents).', 9);
    fillAgentChoice(agents);
    fill('luns', lunRows, 'No LUNs reported.', 7);
    fill('sessions', sessionRows, 'No open sessions.', 4);
    fill('jobs', jobRows, 'No long work running or ended lately.', 7);
    $('charts').replaceChildren.apply($('charts'), figures.length ? figures : [el('p', 'No samples yet.', 'muted')]);
    knownTargets = Object.keys(targets).sort();
    var dl = $('known-targets');
    dl.replaceChildren();
    knownTargets.forEach(function (t) { var o = document.createElement('option'); o.value = t; dl.appendChild(o); });
    var ol = $('events');
    ol.replaceChildren();
    if (localEvents.length > 50) localEvents.splice(0, localEvents.length - 50);
    (events || []).concat(localEvents).sort(function (x, y) { return x.at < y.at ? 1 : x.at > y.at ? -1 : 0; }).slice(0, 50).forEach(function (e) {
      var li = document.createElement('li');
      var t = el('time', new Date(e.at).toLocaleTimeString());
      t.setAttribute('datetime', e.at);
      li.appendChild(t);
      var name = (agents.find(function (a) { return a.id === e.agent_id; }) || {}).name || e.agent_id;
      li.appendChild(el('span', name + ': ' + e.kind + (e.detail ? ' — ' + e.detail : ''), e.kind === 'rejected' || e.kind === 'disconnected' || e.kind === 'CHAP failures' ? 'warn' : ''));
      ol.appendChild(li);
    });
    if (!ol.children.length) ol.appendChild(el('li', 'Nothing yet.'));
  }

  async function renderAcls() {
    var rows = [];
    for (var i = 0; i < knownTargets.length; i++) {
      var t = knownTargets[i];
      var r = await api('GET', '/v1/acls/' + encodeURIComponent(t));
      (r.acls || []).forEach(function (a) {
        var del = el('button', 'Delete', 'secondary');
        del.type = 'button';
        del.setAttribute('aria-label', 'Delete the ACL of ' + a.initiator + ' on ' + t);
        del.addEventListener('click', function () { deleteAcl(t, a.initiator); });
        var chap = a.chap ? a.chap.userid + (a.chap.mutual_userid ? ' (mutual: ' + a.chap.mutual_userid + ')' : '') : 'none';
        var tr = row([t, a.initiator, chap, (a.mapped_luns || []).map(function (m) { return m.index + '→' + m.tpg_lun + (m.write_protect ? ' ro' : ''); }).join(', '), del]);
        tr.setAttribute('data-acl', a.initiator);
        rows.push(tr);
      });
    }
    fill('acls', rows, 'No ACLs on the targets agents serve.', 5);
  }

  /**
   * Re-reads what the topics name (all when absent): agents and events for 'agents', the ACL tables for 'acls'
   * or when the known targets changed. One at a time; notices that come meanwhile make one more.
   */
  async function refresh(topics) {
    topics = topics || ['agents', 'acls', 'discovery'];
    if (refreshing) {
      again = (again || []).concat(topics);
      return refreshing;
    }
    refreshing = (async function () {
      try {
        var before = knownTargets.join('\n');
        var list = await api('GET', '/v1/agents');
        var ev = await api('GET', '/ui/api/events');
        ingest(list);
        last = { list: list, events: ev.events };
        render(list, ev.events);
        if (topics.indexOf('acls') >= 0 || knownTargets.join('\n') !== before) await renderAcls();
      } catch (e) {
        if (token) $('summary').textContent = 'Gateway unreachable: ' + e.message;
      }
    })();
    await refreshing;
    refreshing = null;
    if (again && token) {
      var next = again;
      again = null;
      await refresh(next);
    }
  }

  function liveState(state, retryMs) {
    var p = $('live');
    p.hidden = false;
    p.setAttribute('data-live', state);
    if (state === 'live') {
      p.textContent = 'Live';
      p.title = 'Updated as the gateway pushes changes';
      if (pollTimer) clearInterval(pollTimer);
      pollTimer = null;
    } else if (state === 'connecting') {
      p.textContent = 'Connecting…';
    } else {
      p.textContent = 'Live updates down: refreshing every ' + SLOW_POLL_MS / 1000 + ' s, reconnecting in ' + Math.max(1, Math.round(retryMs / 1000)) + ' s';
      if (!pollTimer) pollTimer = setInterval(function () { refresh(); }, SLOW_POLL_MS);
    }
  }

  async function deleteAcl(target, initiator) {
    if (!confirm('Delete the ACL of ' + initiator + ' on ' + target + '? Its sessions are dropped.')) return;
    try {
      var r = await api('DELETE', '/v1/acls/' + encodeURIComponent(target) + '/' + encodeURIComponent(initiator));
      $('acl-status').textContent = 'Deleted the ACL of ' + initiator + ' (' + pushedTo(r) + ').' + pushNote(r);
    } catch (e) {
      $('acl-status').textContent = 'Not deleted: ' + e.message;
    }
    refresh();
  }

  async function assign(agentId, target) {
    var name = agentNames[agentId] || agentId;
    try {
      var r = await api('PUT', '/v1/agents/' + encodeURIComponent(agentId) + '/targets/' + encodeURIComponent(target));
      $('assign-status').textContent = (r.changed === false ? target + ' was already assigned to ' + name + '.' : 'Assigned ' + target + ' to ' + name + ' (' + pushedTo(r) + ').') + pushNote(r);
      $('assign-target').value = '';
    } catch (e) {
      $('assign-status').textContent = 'Not assigned: ' + e.message;
    }
    refresh();
  }

  async function unassign(a, target) {
    if (!confirm('Unassign ' + target + ' from ' + a.name + '? Its ACLs stop reaching that agent and their sessions are dropped.')) return;
    try {
      var r = await api('DELETE', '/v1/agents/' + encodeURIComponent(a.id) + '/targets/' + encodeURIComponent(target));
      $('assign-status').textContent = 'Unassigned ' + target + ' from ' + a.name + ' (' + pushedTo(r) + ').' + pushNote(r);
    } catch (e) {
      $('assign-status').textContent = 'Not unassigned: ' + e.message;
    }
    // the button goes away with the row's refresh; keep the keyboard user in the same form
    $('assign-target').focus();
    refresh();
  }

  function show(loggedIn) {
    $('login-view').hidden = loggedIn;
    $('fleet-view').hidden = !loggedIn;
    $('logout').hidden = !loggedIn;
  }

  function logout(message) {
    token = '';
    sessionStorage.removeItem('outpost-admin-token');
    if (live) live.close();
    live = null;
    if (pollTimer) clearInterval(pollTimer);
    if (clockTimer) clearInterval(clockTimer);
    pollTimer = clockTimer = null;
    $('live').hidden = true;
    show(false);
    $('summary').textContent = '';
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  async function login(t) {
    token = t;
    try {
      await api('GET', '/v1/agents');
    } catch (e) {
      if (e.message !== 'unauthorized') $('login-error').textContent = 'Cannot reach the gateway: ' + e.message;
      return;
    }
    sessionStorage.setItem('outpost-admin-token', t);
    $('login-error').textContent = '';
    show(true);
    await refresh();
    $('agents-h').focus();
    // the hello of the channel brings one more refresh: what changed between the first one and it
    live = window.OutpostLive.connect({ token: t, onNotice: refresh, onState: liveState });
    clockTimer = setInterval(function () {
      // not under the keyboard user's feet: a redraw would take the focus from a button in a table
      var f = document.activeElement;
      if (last && !(f && f.closest && f.closest('table'))) render(last.list, last.events);
    }, CLOCK_MS);
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('agents-h').tabIndex = -1;
    $('login-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var t = $('token').value;
      $('token').value = '';
      login(t);
    });
    $('logout').addEventListener('click', function () { logout(''); });
    $('assign-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      assign($('assign-agent').value, $('assign-target').value.trim());
    });
    $('acl-form').addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var target = $('acl-target').value.trim();
      var initiator = $('acl-initiator').value.trim();
      var luns = $('acl-luns').value.split(',').map(function (s) { return s.trim(); }).filter(Boolean).map(Number);
      var wp = $('acl-wp').checked;
      var body = { mapped_luns: luns.map(function (n, i) { return { index: i, tpg_lun: n, write_protect: wp }; }) };
      var user = $('acl-user').value.trim();
      var secret = $('acl-secret').value;
      if (user || secret) {
        body.chap = { userid: user, password: secret };
        if ($('acl-muser').value.trim() || $('acl-msecret').value) { body.chap.mutual_userid = $('acl-muser').value.trim(); body.chap.mutual_password = $('acl-msecret').value; }
      }
      try {
        var r = await api('PUT', '/v1/acls/' + encodeURIComponent(target) + '/' + encodeURIComponent(initiator), body);
        $('acl-status').textContent = 'Saved the ACL of ' + initiator + ' (' + pushedTo(r) + ')' + (r.warnings ? '. ' + r.warnings.join(' ') : '.') + pushNote(r);
        // secrets leave the page as soon as they are sent
        $('acl-secret').value = '';
        $('acl-msecret').value = '';
      } catch (e) {
        $('acl-status').textContent = 'Not saved: ' + e.message;
      }
      refresh();
    });
    if (token) login(token); else show(false);
  });
})();
`;
