// outpost_tunnels in saveconfig.json (kept through load/save like every key, bad tunnels refused with
// the rest unchanged) and the shell's `tunnels` node on a running agent: create dials the relay live,
// ls shows the state, delete stops it, saveconfig writes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../../agent/config/load.js';
import { serializeConfig } from '../../../agent/config/dump.js';
import { outpost, startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { freePort } from '../../helpers/net.js';
import { backoffMs } from '../../../agent/tunnel/tunnel.js';
import { TARGET, lunUrl, multipathConfig } from '../multipath/helpers.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from '../../gateway/relay/helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let relay: SpawnedRelay;
let agentToken: string;
let h: InProcessAgent;
const TPG = `/iscsi/${TARGET}/tpg1/tunnels`;

before(async () => {
  tmp = await tempDir();
  const token = randomBytes(24).toString('hex');
  agentToken = await writeToken(tmp.dir, 'agent-token', [token]);
  relay = await spawnRelay({ tokenFile: await writeToken(tmp.dir, 'relay-tokens', [token]) });
  h = await startAgentInProcess({ config: multipathConfig([{ tag: 1, portals: [] }]) });
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relay?.stop();
  await tmp?.cleanup();
});

function withTunnels(tunnels: unknown): object {
  const c = multipathConfig([{ tag: 1, portals: [] }]) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  c.targets[0]!.tpgs[0]!.outpost_tunnels = tunnels;
  return c;
}

test('outpost_tunnels survives load and save unchanged, unknown keys included', () => {
  const tunnels = [
    { url: 'wss://relay-a.example:8443/t', advertise: '203.0.113.7:3260', token_file: '/etc/outpost/relay-a.token', source: '192.0.2.10', ca_file: '/etc/outpost/ca.pem', future_key: 1 },
    { url: 'ws://127.0.0.1:9000/', advertise: '[2001:db8::1]:3260', token_file: '/etc/outpost/local.token' },
  ];
  const once = JSON.parse(serializeConfig(loadConfig(withTunnels(tunnels))));
  assert.deepEqual(once.targets[0].tpgs[0].outpost_tunnels, tunnels);
  assert.equal(serializeConfig(loadConfig(once)), serializeConfig(loadConfig(withTunnels(tunnels))));
});

test('bad tunnels are refused with a message naming the TPG and the problem', () => {
  const base = { url: 'ws://127.0.0.1:9000/', advertise: '127.0.0.1:3260', token_file: '/t' };
  const cases: Array<[unknown, RegExp]> = [
    [{}, /outpost_tunnels must be a list/],
    [[{ ...base, url: 'ws://relay.example/' }], /plain ws:\/\/ only to a loopback relay; use wss:\/\//],
    [[{ ...base, url: 'http://127.0.0.1/' }], /must be ws:\/\/ or wss:\/\//],
    [[{ ...base, advertise: '127.0.0.1' }], /advertise must be HOST:PORT/],
    [[{ ...base, advertise: '0.0.0.0:3260' }], /not a wildcard/],
    [[{ ...base, token_file: 'relative.token' }], /token_file must be an absolute path/],
    [[{ ...base, source: 'eth0' }], /source 'eth0' is not an IP address/],
    [[base, base], /duplicate tunnel ws:\/\/127\.0\.0\.1:9000\//],
  ];
  for (const [t, re] of cases) assert.throws(() => loadConfig(withTunnels(t)), (e: Error) => re.test(e.message) && /tpg1/.test(e.message), JSON.stringify(t));
});

test('shell: tunnels create dials live, ls shows the state, saveconfig keeps it, delete stops it', async () => {
  const url = relay.url;
  const bad = await outpost(h.stateDir, [TPG, 'create', 'ws://relay.example:1/', `advertise=${relay.host}:${relay.portal}`, `token_file=${agentToken}`]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr + bad.stdout, /Invalid tunnel: url 'ws:\/\/relay\.example:1\/': plain ws:\/\/ only to a loopback relay/);
  const missing = await outpost(h.stateDir, [TPG, 'create', url, `advertise=${relay.host}:${relay.portal}`, `token_file=${join(tmp.dir, 'nope')}`]);
  assert.match(missing.stderr + missing.stdout, /Could not open token_file/);
  assert.equal(h.agent.model().targets[0]!.tpgs[0]!.outpost_tunnels, undefined, 'refused commands changed nothing');

  const c = await outpost(h.stateDir, [TPG, 'create', url, `advertise=${relay.host}:${relay.portal}`, `token_file=${agentToken}`]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`Created tunnel ${url} advertising ${relay.host}:${relay.portal}\\.`));
  assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'connected', 10_000));
  assert.equal((await run('iscsi-inq', [lunUrl(relay.host, relay.portal)])).code, 0);
  const ls = await outpost(h.stateDir, [TPG, 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /o- tunnels \.+ \[Tunnels: 1\]/);
  assert.match(ls.stdout, new RegExp(`o- tunnel0 \\.* ?\\[${url} advertise=${relay.host}:${relay.portal}: connected \\d+ idle, \\d+ in use, (latency \\d+ ms, )?rx \\d+ B, tx \\d+ B\\]`), ls.stdout);
  const dup = await outpost(h.stateDir, [TPG, 'create', url, `advertise=${relay.host}:${relay.portal}`, `token_file=${agentToken}`]);
  assert.match(dup.stderr + dup.stdout, /already exists/);

  const save = await outpost(h.stateDir, ['/', 'saveconfig']);
  assert.equal(save.code, 0, save.stderr);
  const saved = JSON.parse(await readFile(h.configPath, 'utf8'));
  assert.deepEqual(saved.targets[0].tpgs[0].outpost_tunnels, [{ advertise: `${relay.host}:${relay.portal}`, token_file: agentToken, url }]);

  const d = await outpost(h.stateDir, [TPG, 'delete', url]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /Deleted tunnel/);
  assert.equal(h.agent.tunnels.all().length, 0);
  // The relay no longer has a path to the target: a login gets target not found.
  assert.ok(await until(async () => {
    const cl = await RawIscsiClient.connect(relay.portal, relay.host);
    const r = await cl.login('iqn.2026-01.test:gone', TARGET);
    cl.close();
    return r.h.statusClass === 2 && r.h.statusDetail === 3;
  }, 5000, 200));
});

test('a relay that is down shows as "retrying in N s" with the last error; backoff doubles from 1 s to 30 s with jitter', async () => {
  const dead = `ws://127.0.0.1:${await freePort()}/`;
  const c = await outpost(h.stateDir, [TPG, 'create', dead, 'advertise=127.0.0.1:3260', `token_file=${agentToken}`]);
  assert.equal(c.code, 0, c.stderr);
  try {
    assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'retrying', 5000));
    const ls = await outpost(h.stateDir, [TPG, 'ls']);
    assert.match(ls.stdout, /retrying in \d+ s, rx 0 B, tx 0 B, last error: .*ECONNREFUSED/, ls.stdout);
  } finally {
    await outpost(h.stateDir, [TPG, 'delete', dead]);
  }
  const lo = (f: number) => backoffMs(f, 1000, 30_000, () => 0);
  const hi = (f: number) => backoffMs(f, 1000, 30_000, () => 1);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map(lo), [1000, 1600, 3200, 6400, 12800, 24000, 24000, 24000]);
  assert.deepEqual([1, 2, 3, 6, 50].map(hi), [1200, 2400, 4800, 30000, 30000]);
});
