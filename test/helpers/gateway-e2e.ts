// End-to-end suite for the control plane (issue 7), run against the Node and the Workers gateway: a real
// agent process (`node bin/outpost.js agent` with OUTPOST_GATEWAY/OUTPOST_AGENT_TOKEN) enrolled with the
// gateway, libiscsi logging in with the CHAP secrets the gateway pushed.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { CONTROL_PATH, encodeMessage } from '../../shared/control-protocol.js';
import { REPO, outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from './agent.js';
import { api, filesContaining, waitFor, type TestGateway } from './gateway.js';
import { freePort } from './net.js';

const run = promisify(execFile);
const TARGET = 'iqn.2024-01.com.example.outpost:e2e';
const INITIATOR = 'iqn.1994-05.com.redhat:e2e-host';
const MUTUAL_INITIATOR = 'iqn.1994-05.com.redhat:e2e-mutual';
const STRANGER = 'iqn.1994-05.com.redhat:stranger';
// 16 characters each: long enough for the gateway, short enough for Windows initiators (no warnings).
const SECRET = 'E2e-Chap-Secret1';
const MUTUAL_INI_SECRET = 'Mutual-Ini-Sec-2';
const MUTUAL_TGT_SECRET = 'Mutual-Tgt-Sec-3';
const ROTATED = 'E2e-Rotated-Sec4';
const SECRETS = [SECRET, MUTUAL_INI_SECRET, MUTUAL_TGT_SECRET, ROTATED];
const LUN0 = [{ index: 0, tpg_lun: 0, write_protect: false }];

interface Login { user: string; secret: string; initiator?: string; target?: { user: string; secret: string } }

/** One libiscsi login + INQUIRY; true when it succeeded. Mutual CHAP goes through libiscsi's env vars. */
async function inq(port: number, l: Login): Promise<boolean> {
  const url = `iscsi://${l.user}%${encodeURIComponent(l.secret)}@127.0.0.1:${port}/${TARGET}/0`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LIBISCSI_CHAP_TARGET_USERNAME;
  delete env.LIBISCSI_CHAP_TARGET_PASSWORD;
  if (l.target) Object.assign(env, { LIBISCSI_CHAP_TARGET_USERNAME: l.target.user, LIBISCSI_CHAP_TARGET_PASSWORD: l.target.secret });
  try {
    await run('iscsi-inq', ['-i', l.initiator ?? INITIATOR, url], { timeout: 10_000, env });
    return true;
  } catch {
    return false;
  }
}

/** Sessions of `initiator` open on the running agent, as the shell's `sessions` command lists them. */
async function sessionsOf(stateDir: string, initiator: string): Promise<number> {
  const r = await outpost(stateDir, ['sessions']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.includes(initiator)).length;
}

function rawSocket(url: string, token: string): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${token}` } });
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.on('error', () => {}); // an oversized send may fail with EPIPE once the gateway closes
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

export function controlPlaneE2e(name: string, startGw: () => Promise<TestGateway>): void {
  describe(name, { timeout: 300_000 }, () => {
    let gw: TestGateway;
    let dirs: AgentDirs;
    let port = 0;
    let agentId = '';
    let agentToken = '';
    let agent: SpawnedAgent | undefined;
    const agentLogs: string[] = [];
    const figures: string[] = [];
    let perf: ChildProcess | undefined;
    const oneWay: Login = { user: 'e2e-user', secret: SECRET };
    const mutual: Login = { user: 'e2e-mutual', secret: MUTUAL_INI_SECRET, initiator: MUTUAL_INITIATOR, target: { user: 'e2e-target', secret: MUTUAL_TGT_SECRET } };

    const startAgentProcess = async (): Promise<SpawnedAgent> => {
      const a = await spawnAgent({ dirs, env: { OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: agentToken, OUTPOST_LOG_LEVEL: 'debug' } });
      agent = a;
      return a;
    };
    const stopAgentProcess = async (): Promise<void> => {
      const a = agent;
      agent = undefined;
      if (!a) return;
      assert.equal(await a.stop(), 0, 'agent exits cleanly on SIGTERM');
      agentLogs.push(a.stderr());
    };
    const agentRow = async (): Promise<any> => (await api(gw, 'GET', '/v1/agents')).body.agents.find((x: any) => x.id === agentId);
    const inSync = async (): Promise<any> => {
      const l = await api(gw, 'GET', '/v1/agents');
      const a = l.body.agents.find((x: any) => x.id === agentId);
      return a?.connected && a.applied_version === l.body.policy_version ? { ...a, policy_version: l.body.policy_version, text: l.text } : undefined;
    };

    before(async () => {
      gw = await startGw();
      port = await freePort();
      dirs = await tempAgentDirs({
        storage_objects: [{ plugin: 'rd_mcp', name: 'r0', size: 16 * 1024 * 1024 }],
        targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 1, generate_node_acls: 0 }, luns: [{ index: 0, storage_object: '/backstores/ramdisk/r0' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
      });
      const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'e2e-branch' });
      assert.equal(enrolled.status, 201, enrolled.text);
      agentId = enrolled.body.id;
      agentToken = enrolled.body.token;
      const assigned = await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}`);
      assert.equal(assigned.status, 200, assigned.text);
    });
    after(async () => {
      perf?.kill('SIGKILL');
      if (agent) agentLogs.push(agent.stderr());
      await agent?.cleanup();
      await gw?.dispose();
      if (dirs) await rm(dirs.dir, { recursive: true, force: true });
      for (const f of figures) console.log(`# [${name}] ${f}`);
    });

    it('an enrolled agent process connects; without an ACL the initiator is refused', async () => {
      await startAgentProcess();
      await waitFor('agent connected', async () => (await agentRow())?.connected, 15_000, 100);
      assert.equal(await inq(port, oneWay), false, 'no ACL yet');
    });

    it('a PUT ACL with CHAP admits the libiscsi login within 5 s; wrong secret and unknown initiator are refused', async () => {
      const t0 = Date.now();
      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: oneWay.user, password: SECRET }, mapped_luns: LUN0 });
      assert.equal(put.status, 200, put.text);
      await waitFor('login with the pushed secret', () => inq(port, oneWay), 5000, 50);
      const ms = Date.now() - t0;
      figures.push(`PUT ACL → libiscsi login succeeded after ${ms} ms`);
      console.log(`# [${name}] PUT ACL → libiscsi login succeeded after ${ms} ms`);
      assert.ok(ms < 5000);
      assert.equal(await inq(port, { ...oneWay, secret: 'Wrong-Secret-123' }), false, 'wrong secret refused');
      assert.equal(await inq(port, { ...oneWay, initiator: STRANGER }), false, 'unknown initiator refused');
    });

    it('mutual CHAP pushed from the gateway: the right target secret logs in, a wrong one is refused by the initiator', async () => {
      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${MUTUAL_INITIATOR}`, {
        chap: { userid: mutual.user, password: MUTUAL_INI_SECRET, mutual_userid: mutual.target!.user, mutual_password: MUTUAL_TGT_SECRET },
        mapped_luns: LUN0,
      });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.body.warnings ?? [], []);
      await waitFor('mutual CHAP login', () => inq(port, mutual), 5000, 50);
      assert.equal(await inq(port, { ...mutual, target: { user: mutual.target!.user, secret: 'Not-The-Target-9' } }), false, 'wrong target secret refused');
      assert.equal(await inq(port, { ...mutual, secret: 'Wrong-Initiat-77' }), false, 'wrong initiator secret refused');
      assert.equal(await inq(port, mutual), true, 'still admitted with the right secrets');
    });

    it('GET /v1/agents shows the agent connected at the current version, and no secret', async () => {
      const a = await waitFor('agent in sync', inSync, 5000, 100);
      assert.equal(a.connected, true);
      assert.equal(a.in_sync, true);
      assert.deepEqual(a.served_targets, [TARGET]);
      assert.equal(a.last_error, null);
      const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
      assert.equal(a.agent_version, pkg.version, 'the agent reports its package version in hello');
      for (const s of [...SECRETS, agentToken]) assert.ok(!a.text.includes(s), 'no secret or token listed');
    });

    it('a malformed or oversized frame closes only that socket; the agent stays connected and keeps receiving policy', async () => {
      const other = await api(gw, 'POST', '/v1/agents', { name: 'e2e-noisy' });
      assert.equal(other.status, 201);
      const bad = await rawSocket(gw.url, other.body.token);
      bad.ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13]));
      const c1 = await bad.closed;
      assert.ok(c1 === 1007 || c1 === 1002, `malformed frame closed with ${c1}`);
      const big = await rawSocket(gw.url, other.body.token);
      big.ws.send(Buffer.alloc(1024 * 1024 + 100, 0x41));
      const c2 = await big.closed;
      assert.ok(c2 === 1009 || c2 === 1006, `oversized frame closed with ${c2}`);
      const text = await rawSocket(gw.url, other.body.token);
      text.ws.send('{"type":"hello"}');
      assert.equal(await text.closed, 1007);
      const notHello = await rawSocket(gw.url, other.body.token);
      notHello.ws.send(encodeMessage({ type: 'ack', version: 1 }).subarray(0, 3));
      assert.equal(await notHello.closed, 1007);
      assert.equal((await agentRow()).connected, true, 'the real agent is still connected');
      assert.equal(agent!.proc.exitCode, null);
      // and still receives pushes: a write-protect change on its ACL reaches it
      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: oneWay.user, password: SECRET }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: true }] });
      assert.equal(put.status, 200);
      await waitFor('agent acked the push', inSync, 5000, 100);
      assert.equal(await inq(port, oneWay), true);
    });

    it('saveconfig keeps managed ACLs (and their secrets) out of saveconfig.json', async () => {
      const r = await outpost(dirs.stateDir, ['saveconfig']);
      assert.equal(r.code, 0, r.stderr);
      const saved = await readFile(dirs.configPath, 'utf8');
      assert.match(saved, new RegExp(TARGET.replace(/\./g, '\\.')), 'the target is saved');
      for (const s of [INITIATOR, MUTUAL_INITIATOR, ...SECRETS]) assert.ok(!saved.includes(s), `${s} not in saveconfig.json`);
    });

    it('with the gateway stopped, a restarted agent admits the initiators from its cached policy, then reconnects by itself', async () => {
      await gw.stop();
      await stopAgentProcess();
      const a = await startAgentProcess();
      // the gateway is down: these logins can only be admitted by the cached policy
      assert.equal(await inq(port, oneWay), true, 'one-way CHAP from the cache');
      assert.equal(await inq(port, mutual), true, 'mutual CHAP from the cache');
      assert.equal(await inq(port, { ...oneWay, secret: 'Wrong-Secret-123' }), false, 'wrong secret still refused');
      assert.equal(await inq(port, { ...oneWay, initiator: STRANGER }), false, 'unknown initiator still refused');
      assert.match(a.stderr(), /cached gateway policy applied/);
      const t0 = Date.now();
      await gw.start();
      const up = Date.now();
      await waitFor('agent reconnected', async () => (await agentRow())?.connected, 45_000, 100);
      figures.push(`gateway restart took ${up - t0} ms; agent reconnected ${Date.now() - up} ms after it was back`);
      await waitFor('agent in sync after reconnect', inSync, 5000, 100);
    });

    it('a mapped tpg_lun the agent does not have is refused at REST (reported LUNs) or nacked by the agent; unassigning drops sessions', async () => {
      await waitFor('inventory reported', async () => {
        const r = await api(gw, 'PUT', `/v1/acls/${TARGET}/${STRANGER}`, { mapped_luns: [{ index: 0, tpg_lun: 9, write_protect: false }] });
        return r.status === 400 ? r : undefined;
      }, 5000, 100).then((r) => assert.match(r.body.error, /tpg_lun 9 does not exist on agent e2e-branch/));
      assert.equal((await api(gw, 'GET', `/v1/acls/${TARGET}/${STRANGER}`)).status, 404);
      // unassigning the target drops the managed ACLs and their live sessions
      perf = spawn('iscsi-perf', ['-i', INITIATOR, '-x', '0', `iscsi://${oneWay.user}%${SECRET}@127.0.0.1:${port}/${TARGET}/0`], { stdio: 'ignore' });
      await waitFor('live session', async () => (await sessionsOf(dirs.stateDir, INITIATOR)) > 0, 10_000, 200);
      assert.equal((await api(gw, 'DELETE', `/v1/agents/${agentId}/targets/${TARGET}`)).status, 200);
      await waitFor('session dropped on unassign', async () => (await sessionsOf(dirs.stateDir, INITIATOR)) === 0, 5000, 100);
      perf.kill('SIGKILL');
      perf = undefined;
      assert.equal(await inq(port, oneWay), false, 'no longer admitted');
      // stored while no agent had the target (nothing to check against): the agent nacks it on assignment
      assert.equal((await api(gw, 'PUT', `/v1/acls/${TARGET}/${STRANGER}`, { mapped_luns: [{ index: 0, tpg_lun: 9, write_protect: false }] })).status, 200);
      assert.equal((await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}`)).status, 200);
      const err = await waitFor('last_error from the nack', async () => (await agentRow())?.last_error, 5000, 100);
      assert.match(err, /refers to TPG LUN 9, which .* does not have/);
      assert.equal((await agentRow()).in_sync, false);
      assert.equal((await api(gw, 'DELETE', `/v1/acls/${TARGET}/${STRANGER}`)).status, 200);
      await waitFor('in sync again', inSync, 5000, 100);
      assert.equal((await agentRow()).last_error, null);
      await waitFor('admitted again', () => inq(port, oneWay), 5000, 100);
    });

    it('a changed CHAP secret drops the live session; the new secret logs in, the old one is refused', async () => {
      perf = spawn('iscsi-perf', ['-i', INITIATOR, '-x', '0', `iscsi://${oneWay.user}%${SECRET}@127.0.0.1:${port}/${TARGET}/0`], { stdio: 'ignore' });
      await waitFor('live session', async () => (await sessionsOf(dirs.stateDir, INITIATOR)) > 0, 10_000, 200);
      const t0 = Date.now();
      const changed = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: oneWay.user, password: ROTATED }, mapped_luns: LUN0 });
      assert.equal(changed.status, 200, changed.text);
      await waitFor('session dropped', async () => (await sessionsOf(dirs.stateDir, INITIATOR)) === 0, 5000, 100);
      figures.push(`CHAP secret changed → live session dropped after ≤${Date.now() - t0} ms`);
      perf.kill('SIGKILL');
      perf = undefined;
      // iscsi-perf redialed with the old secret until it was killed: those failures earned a backoff for
      // this initiator at this address (issue 18 item 7), which a correct login waits out, as a real one would
      await waitFor('the new secret logs in', () => inq(port, { ...oneWay, secret: ROTATED }), 35_000, 250);
      assert.equal(await inq(port, oneWay), false, 'the old secret is refused');
      assert.equal(await inq(port, mutual), true, 'the other initiator is untouched');
      // back to the first secret for the following tests
      assert.equal((await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: oneWay.user, password: SECRET }, mapped_luns: LUN0 })).status, 200);
      await waitFor('old secret back', () => inq(port, oneWay), 35_000, 250);
    });

    it('DELETE drops the live session and refuses the next login within 5 s', async () => {
      perf = spawn('iscsi-perf', ['-i', INITIATOR, '-x', '0', `iscsi://${oneWay.user}%${SECRET}@127.0.0.1:${port}/${TARGET}/0`], { stdio: 'ignore' });
      await waitFor('live session', async () => (await sessionsOf(dirs.stateDir, INITIATOR)) > 0, 10_000, 200);
      const t0 = Date.now();
      const del = await api(gw, 'DELETE', `/v1/acls/${TARGET}/${INITIATOR}`);
      assert.equal(del.status, 200, del.text);
      await waitFor('login refused', async () => !(await inq(port, oneWay)), 5000, 50);
      const refusedMs = Date.now() - t0;
      await waitFor('session dropped', async () => (await sessionsOf(dirs.stateDir, INITIATOR)) === 0, 5000, 100);
      const droppedMs = Date.now() - t0;
      figures.push(`DELETE ACL → next login refused after ≤${refusedMs} ms, live session gone after ≤${droppedMs} ms`);
      assert.ok(droppedMs < 5000);
      assert.equal(await inq(port, mutual), true, 'the other ACL is untouched');
      perf.kill('SIGKILL');
      perf = undefined;
    });

    it('no CHAP secret or agent token appears in clear text in the gateway storage, the agent dir, any response or any log', async () => {
      await stopAgentProcess(); // flushes its logs and state
      const needles = [...SECRETS, agentToken];
      // the scans read where the policy really lives (else they could not fail)
      assert.ok((await filesContaining(gw.storageDir, [MUTUAL_INITIATOR])).length > 0, 'gateway storage holds the ACLs');
      assert.ok((await filesContaining(dirs.stateDir, ['"version"'])).some((f) => f.endsWith('control-policy.json')), 'agent policy cache present');
      assert.deepEqual(await filesContaining(gw.storageDir, needles), [], 'gateway storage');
      assert.deepEqual(await filesContaining(dirs.dir, needles), [], 'agent state dir and saveconfig.json');
      const gwLogs = gw.logs();
      const logs = agentLogs.join('');
      assert.ok(logs.includes('cached gateway policy applied') && logs.includes('gateway policy applied'), 'agent logs were captured');
      assert.ok(gwLogs.length > 0, 'gateway logs were captured');
      for (const s of needles) {
        assert.ok(!gwLogs.includes(s), 'gateway log');
        assert.ok(!logs.includes(s), 'agent log');
      }
      // the enrollment response shows the token once, by design; no response ever shows a CHAP secret
      for (const s of SECRETS) assert.ok(!gw.responses.some((t) => t.includes(s)), 'gateway responses');
    });
  });
}
