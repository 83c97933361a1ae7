// The dashboard's HTML shell and stylesheet (served by ui/routes.ts). Semantic elements so it works with the
// keyboard and screen readers; one column on phones, tables scroll sideways instead of overflowing.

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Outpost fleet</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/charts.js" defer></script>
<script src="/ui/live.js" defer></script>
<script src="/ui/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <h1>Outpost fleet</h1>
  <p id="summary" aria-live="polite"></p>
  <p id="live" class="live" role="status" hidden></p>
  <button id="logout" type="button" hidden>Log out</button>
</header>
<main id="main">
  <section id="login-view" aria-labelledby="login-h">
    <h2 id="login-h">Log in</h2>
    <form id="login-form">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required minlength="16">
      <button type="submit">Log in</button>
      <p id="login-error" class="error" role="alert"></p>
    </form>
  </section>
  <div id="fleet-view" hidden>
    <section aria-labelledby="agents-h">
      <h2 id="agents-h">Agents</h2>
      <div class="scroll"><table id="agents"><caption class="sr">Enrolled agents</caption><thead><tr>
        <th scope="col">Agent</th><th scope="col">State</th><th scope="col">Last seen</th><th scope="col">Version</th>
        <th scope="col">Policy</th><th scope="col">Assigned targets</th><th scope="col">Sessions</th><th scope="col">Paths</th><th scope="col">CHAP failures</th></tr></thead><tbody></tbody></table></div>
      <form id="assign-form">
        <fieldset>
          <legend>Assign a target to an agent</legend>
          <p class="hint">A target's ACLs reach only the agents it is assigned to.</p>
          <label for="assign-agent">Agent</label>
          <select id="assign-agent" required></select>
          <label for="assign-target">Target IQN</label>
          <input id="assign-target" list="known-targets" required autocomplete="off" placeholder="iqn.2003-01.org.linux-iscsi.host:disk1">
          <button type="submit">Assign</button>
          <p id="assign-status" role="status"></p>
        </fieldset>
      </form>
    </section>
    <section aria-labelledby="luns-h">
      <h2 id="luns-h">Targets and LUNs</h2>
      <div class="scroll"><table id="luns"><caption class="sr">Logical units reported by the agents</caption><thead><tr>
        <th scope="col">Agent</th><th scope="col">LUN</th><th scope="col">Health</th><th scope="col">Cached</th>
        <th scope="col">Dirty</th><th scope="col">Recovery point</th><th scope="col">Recovery point, last minutes</th></tr></thead><tbody></tbody></table></div>
      <div class="scroll"><table id="sessions"><caption>Sessions</caption><thead><tr>
        <th scope="col">Agent</th><th scope="col">Target</th><th scope="col">Initiator</th><th scope="col">Connections</th></tr></thead><tbody></tbody></table></div>
    </section>
    <section aria-labelledby="charts-h">
      <h2 id="charts-h">Throughput and recovery point</h2>
      <p class="hint">Per LUN, the last 3 minutes as the agents report them: bytes/s read and written, and the age of the oldest data not yet in the bucket.</p>
      <div id="charts" class="charts"></div>
    </section>
    <section aria-labelledby="jobs-h">
      <h2 id="jobs-h">Long work</h2>
      <div class="scroll"><table id="jobs"><caption class="sr">Running and recent jobs of the agents</caption><thead><tr>
        <th scope="col">Agent</th><th scope="col">Job</th><th scope="col">Subject</th><th scope="col">State</th><th scope="col">Progress</th>
        <th scope="col">Rate</th><th scope="col">ETA</th></tr></thead><tbody></tbody></table></div>
    </section>
    <section aria-labelledby="acls-h">
      <h2 id="acls-h">Access control</h2>
      <div class="scroll"><table id="acls"><caption class="sr">ACLs per target</caption><thead><tr>
        <th scope="col">Target</th><th scope="col">Initiator</th><th scope="col">CHAP user</th><th scope="col">LUNs</th><th scope="col"><span class="sr">Actions</span></th></tr></thead><tbody></tbody></table></div>
      <form id="acl-form">
        <fieldset>
          <legend>Create or replace an ACL</legend>
          <label for="acl-target">Target IQN</label>
          <input id="acl-target" list="known-targets" required autocomplete="off">
          <datalist id="known-targets"></datalist>
          <label for="acl-initiator">Initiator IQN</label>
          <input id="acl-initiator" required autocomplete="off" placeholder="iqn.1994-05.com.redhat:host">
          <label for="acl-user">CHAP user name</label>
          <input id="acl-user" autocomplete="off">
          <label for="acl-secret">CHAP secret (12–16 characters for Windows initiators)</label>
          <input id="acl-secret" type="password" autocomplete="new-password">
          <label for="acl-muser">Mutual CHAP user name (optional)</label>
          <input id="acl-muser" autocomplete="off">
          <label for="acl-msecret">Mutual CHAP secret (optional)</label>
          <input id="acl-msecret" type="password" autocomplete="new-password">
          <label for="acl-luns">Mapped LUNs (TPG LUN numbers, comma separated)</label>
          <input id="acl-luns" value="0" inputmode="numeric" pattern="[0-9, ]+">
          <label class="inline"><input id="acl-wp" type="checkbox"> Write-protected</label>
          <button type="submit">Save ACL</button>
          <p id="acl-status" role="status"></p>
        </fieldset>
      </form>
    </section>
    <section aria-labelledby="events-h">
      <h2 id="events-h">Recent events</h2>
      <ol id="events" class="events"></ol>
    </section>
  </div>
</main>
</body>
</html>
`;

export const APP_CSS = `
:root { --bg: #f6f7f9; --fg: #1b1f24; --muted: #5b6470; --ok: #116b2f; --bad: #a4161a; --warn: #8a5a00; --line: #d5d9df; --accent: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.5rem; padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; }
header p { margin: 0; color: var(--muted); flex: 1; }
header p.live { flex: none; font-size: .85rem; }
.live::before { content: ""; display: inline-block; width: .55rem; height: .55rem; border-radius: 50%; margin-right: .35rem; background: var(--muted); }
.live[data-live="live"]::before { background: var(--ok); }
.live[data-live="down"] { color: var(--warn); }
.live[data-live="down"]::before { background: var(--warn); }
main { padding: 1rem; max-width: 80rem; margin: 0 auto; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin-bottom: 1rem; }
h2 { font-size: 1.05rem; margin: .25rem 0 .75rem; }
.scroll { overflow-x: auto; position: relative; } /* contains the .sr labels: absolute ones would widen the page */
table { border-collapse: collapse; width: 100%; margin-bottom: .75rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
.state-online { color: var(--ok); font-weight: 600; }
.state-offline { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); }
.error { color: var(--bad); }
.block { display: block; white-space: normal; max-width: 24rem; }
.muted { color: var(--muted); }
ul.assigned { list-style: none; margin: 0; padding: 0; }
ul.assigned li { display: flex; align-items: center; gap: .5rem; padding: .1rem 0; }
td p.warn { margin: .2rem 0 0; white-space: normal; max-width: 24rem; }
button.small { padding: .1rem .5rem; font-size: .85rem; white-space: nowrap; flex: none; }
.hint { margin: 0 0 .25rem; color: var(--muted); font-size: .9rem; }
form { display: grid; gap: .35rem; max-width: 32rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; display: grid; gap: .35rem; padding: .75rem; }
label { font-weight: 600; font-size: .9rem; }
label.inline { font-weight: normal; }
input, select { font: inherit; padding: .4rem .5rem; border: 1px solid #9aa3ad; border-radius: 4px; width: 100%; }
input[type=checkbox] { width: auto; }
button { font: inherit; padding: .4rem .9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; justify-self: start; }
button.secondary { background: #fff; color: var(--accent); }
:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .25rem .5rem; z-index: 1; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.events { list-style: none; padding: 0; margin: 0; max-height: 20rem; overflow-y: auto; }
.events li { padding: .25rem 0; border-bottom: 1px solid var(--line); }
.events time { color: var(--muted); margin-right: .5rem; font-variant-numeric: tabular-nums; }
svg.spark { width: 10rem; height: 1.6rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr)); gap: .75rem; align-items: start; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
figure.chart figcaption { font-weight: 600; font-size: .9rem; margin-bottom: .25rem; overflow-wrap: anywhere; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .axis { stroke: var(--line); stroke-width: 1; }
svg.chart text { font-size: 9px; fill: var(--muted); }
svg.chart polyline { fill: none; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.s-write { stroke: #c2410c; color: #c2410c; }
.s-read { stroke: var(--accent); color: var(--accent); }
.s-rpo { stroke: #6d28d9; color: #6d28d9; }
.legend { display: flex; gap: 1rem; font-size: .8rem; margin: .1rem 0 .4rem; }
.legend span::before { content: ""; display: inline-block; width: .8rem; height: .2rem; background: currentColor; vertical-align: middle; margin-right: .3rem; }
progress { width: 9rem; height: .9rem; vertical-align: middle; margin-right: .4rem; accent-color: var(--accent); }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
@media (max-width: 40rem) {
  body { font-size: 16px; }
  header p { order: 3; flex-basis: 100%; }
  main { padding: .5rem; }
  section { padding: .5rem; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  tr { border-bottom: 1px solid var(--line); padding: .35rem 0; }
  td { border: 0; padding: .1rem 0; white-space: normal; overflow-wrap: anywhere; }
  td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
}
`;
