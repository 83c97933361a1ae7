// One behaviour suite for the gateway, run against the Node entry and the Workers entry (workerd).
// The agent side is the real control link (agent/control/link.ts) with a small recording agent.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { loadCachedPolicy, startControlLink, type ControlLink, type ManagedAgent } from '../../agent/control/link.js';
import { CONTROL_PATH, encodeMessage } from '../../shared/control-protocol.js';
import type { PolicySnapshot } from '../../shared/policy.js';
import { api, filesContaining, waitFor, type TestGateway } from './gateway.js';
import { fleetPolicyTests } from './gateway-suite-policy.js';
import { fleetScaleTests } from './gateway-suite-fleet.js';

export const TARGET = 'iqn.2024-01.com.example.outpost:disk1';
export const OTHER_TARGET = 'iqn.2024-01.com.example.outpost:elsewhere';
export const INITIATOR = 'iqn.1994-05.com.redhat:host-a';
const PASSWORD = 'Initiator-Secret-42x'; // 20 chars → Windows warning
const MUTUAL = 'Target-Secret-77y';
const DISCOVERY_PASSWORD = 'Discovery-Pass-9q';
export const SECRETS = [PASSWORD, MUTUAL, DISCOVERY_PASSWORD];

export class RecordingAgent implements ManagedAgent {
  readonly applied: { at: number; policy: PolicySnapshot }[] = [];
  current: PolicySnapshot | undefined;
  reject: string | undefined;
  served = [TARGET];
  setManagedPolicy(p: PolicySnapshot): void {
    if (this.reject) throw new Error(this.reject);
    this.current = p;
    this.applied.push({ at: Date.now(), policy: p });
  }
  servedTargets(): string[] {
    return this.served;
  }
  status(): object {
    return { sessions: [{ initiator: INITIATOR, target: TARGET }], luns: [{ lun: 0, state: 'ok' }], cache: { dirty_bytes: 0 } };
  }
}

export function rawSocket(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${token}` } });
    closeCodes.set(ws, new Promise((r) => ws.once('close', (code) => r(code))));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** Close code of a socket; the listener is registered when the socket is created so no close is missed. */
const closeCodes = new WeakMap<WebSocket, Promise<number>>();
export const closed = (ws: WebSocket): Promise<number> => closeCodes.get(ws)!;

export function gatewayBehaviourSuite(name: string, startGw: () => Promise<TestGateway>): void {
  describe(name, { timeout: 240_000 }, () => {
    let gw: TestGateway;
    let stateDir: string;
    let link: ControlLink | undefined;
    let agentId = '';
    let agentToken = '';
    const agent = new RecordingAgent();
    const linkLogs: string[] = [];
    const linkLog = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { linkLogs.push(String(c)); cb(); } }));

    /** Another enrolled agent on its own real control link. */
    const extraAgent = async (name: string) => {
      const r = await api(gw, 'POST', '/v1/agents', { name });
      assert.equal(r.status, 201, r.text);
      const dir = await mkdtemp(join(tmpdir(), 'outpost-link-'));
      const a = new RecordingAgent();
      const l = await startControlLink({ url: gw.url, token: r.body.token, stateDir: dir, agent: a, log: linkLog, statusIntervalMs: 300, minBackoffMs: 100, maxBackoffMs: 1000 });
      await waitFor(`${name} got its first snapshot`, () => a.applied.length >= 1, 15_000);
      return { id: r.body.id as string, agent: a, close: async () => { await l.close(); await rm(dir, { recursive: true, force: true }); } };
    };

    before(async () => {
      gw = await startGw();
      stateDir = await mkdtemp(join(tmpdir(), 'outpost-link-'));
    });
    after(async () => {
      await link?.close();
      await gw?.dispose();
      await rm(stateDir, { recursive: true, force: true });
    });

    it('refuses the admin API without a valid token (401)', async () => {
      for (const [m, p] of [['GET', '/v1/agents'], ['POST', '/v1/agents'], ['GET', `/v1/acls/${TARGET}`], ['PUT', `/v1/acls/${TARGET}/${INITIATOR}`], ['GET', '/v1/discovery-auth']] as const) {
        const none = await api(gw, m, p, undefined, { token: null });
        assert.equal(none.status, 401, `${m} ${p} without token`);
        assert.match(none.body.error, /admin token/);
        assert.equal((await api(gw, m, p, undefined, { token: 'wrong-token-0123456789' })).status, 401);
      }
    });

    it('enrolls an agent: 201 with a token shown once, never listed', async () => {
      const r = await api(gw, 'POST', '/v1/agents', { name: 'branch-1' });
      assert.equal(r.status, 201);
      assert.match(r.body.id, /^[0-9a-f-]{36}$/);
      assert.ok(r.body.token.length >= 40);
      agentId = r.body.id;
      agentToken = r.body.token;
      const list = await api(gw, 'GET', '/v1/agents');
      assert.equal(list.status, 200);
      assert.equal(list.body.agents.length, 1);
      assert.equal(list.body.agents[0].connected, false);
      assert.ok(!list.text.includes(agentToken), 'token not listed');
    });

    it('an agent gets no policy for targets it is not assigned, whatever its hello claims (logged, ignored)', async () => {
      link = await startControlLink({ url: gw.url, token: agentToken, stateDir, agent, log: linkLog, statusIntervalMs: 300, minBackoffMs: 100, maxBackoffMs: 1000 });
      await waitFor('agent connected', async () => (await api(gw, 'GET', '/v1/agents')).body.agents[0].connected, 15_000);
      await waitFor('first (empty) snapshot', () => agent.applied.length >= 1, 5000);
      assert.deepEqual(agent.applied[0]!.policy.targets, {}, 'the hello names TARGET, but nothing is assigned');
      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: 'host-a', password: PASSWORD }, mapped_luns: [] });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.pushed_to, 0);
      await new Promise((r) => setTimeout(r, 400));
      assert.ok(agent.applied.every((a) => a.policy.targets[TARGET] === undefined), 'no snapshot carried the unassigned target');
      await waitFor('the ignored claim is logged', () => /not assigned to it/.test(gw.logs()), 5000);
      const row = (await api(gw, 'GET', '/v1/agents')).body.agents[0];
      assert.deepEqual(row.assigned_targets, []);
    });

    it('PUT /v1/agents/{id}/targets/{iqn} assigns the target: its policy reaches the agent; GET /v1/agents lists it', async () => {
      assert.equal((await api(gw, 'PUT', `/v1/agents/00000000-0000-0000-0000-000000000000/targets/${TARGET}`)).status, 404);
      assert.equal((await api(gw, 'PUT', `/v1/agents/${agentId}/targets/iqn.bogus`)).status, 400);
      const bad = await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}`, { force: true });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /"force"/);
      const r = await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.changed, true);
      assert.equal(r.body.pushed_to, 1);
      const got = await waitFor('snapshot with the assigned target', () => agent.applied.find((a) => a.policy.version === r.body.version), 5000, 5);
      assert.equal(got.policy.targets[TARGET]?.[0]?.initiator, INITIATOR);
      assert.equal(typeof got.policy.fleet_epoch, 'string');
      const again = await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}`);
      assert.equal(again.status, 200);
      assert.equal(again.body.changed, false);
      const row = await waitFor('assigned and in sync', async () => {
        const x = (await api(gw, 'GET', '/v1/agents')).body.agents[0];
        return x.in_sync && x.applied_version === r.body.version ? x : undefined;
      }, 5000);
      assert.deepEqual(row.assigned_targets, [TARGET]);
      assert.deepEqual((await api(gw, 'GET', `/v1/agents/${agentId}/targets`)).body.targets, [TARGET]);
    });

    it('pushes a PUT ACL with CHAP within 5 s; GET /v1/agents shows it applied', async () => {
      const t0 = Date.now();
      const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, {
        chap: { userid: 'host-a', password: PASSWORD, mutual_userid: 'disk1', mutual_password: MUTUAL },
        mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }, { index: 1, tpg_lun: 3, write_protect: true }],
      });
      assert.equal(put.status, 200, put.text);
      assert.ok(Array.isArray(put.body.warnings) && put.body.warnings.length === 2, 'warns about secrets longer than 16');
      assert.equal(put.body.chap.has_password, true);
      const version = put.body.version as number;
      const got = await waitFor('snapshot with the ACL', () => agent.applied.find((a) => a.policy.version === version), 5000, 5);
      const ms = got.at - t0;
      console.log(`# [${gw.kind}] PUT ACL → agent applied snapshot in ${ms} ms`);
      assert.ok(ms < 5000);
      const acl = got.policy.targets[TARGET]!.find((a) => a.initiator === INITIATOR)!;
      assert.deepEqual(acl.chap, { userid: 'host-a', password: PASSWORD, mutual_userid: 'disk1', mutual_password: MUTUAL });
      assert.deepEqual(acl.mapped_luns[1], { index: 1, tpg_lun: 3, write_protect: true });
      assert.equal(got.policy.targets[OTHER_TARGET], undefined);
      const a = await waitFor('applied version and status reported', async () => {
        const l = await api(gw, 'GET', '/v1/agents');
        const x = l.body.agents[0];
        return x.applied_version === version && x.status && x.connected ? x : undefined;
      }, 5000);
      assert.equal(a.in_sync, true);
      assert.deepEqual(a.served_targets, [TARGET]);
      assert.equal(a.status.sessions[0].initiator, INITIATOR);
      const cached = await loadCachedPolicy(stateDir);
      assert.equal(cached?.version, version);
      assert.equal(cached?.targets[TARGET]?.[0]?.chap?.password, PASSWORD);
    });

    it('lists ACLs without secrets', async () => {
      const r = await api(gw, 'GET', `/v1/acls/${TARGET}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.acls.length, 1);
      assert.deepEqual(r.body.acls[0].chap, { userid: 'host-a', mutual_userid: 'disk1', has_password: true, has_mutual_password: true });
      for (const s of SECRETS) assert.ok(!r.text.includes(s));
    });

    it('rejects bad input with 400 and changes nothing', async () => {
      const before = await api(gw, 'GET', `/v1/acls/${TARGET}`);
      const v0 = (await api(gw, 'GET', '/v1/agents')).body.policy_version;
      const n0 = agent.applied.length;
      const good = { chap: { userid: 'u1', password: 'abcdefghijkl' }, mapped_luns: [] };
      const cases: [string, string, unknown, string | undefined, RegExp][] = [
        ['bad JSON', `/v1/acls/${TARGET}/${INITIATOR}`, undefined, '{"chap": ', /not valid JSON/],
        ['invalid target IQN', `/v1/acls/iqn.bogus/${INITIATOR}`, good, undefined, /target IQN .* not a valid iSCSI name/],
        ['invalid initiator IQN', `/v1/acls/${TARGET}/IQN.2000-01.Upper:x`, good, undefined, /initiator IQN/],
        ['short secret', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: 'u', password: 'short' }, mapped_luns: [] }, undefined, /chap.password must be 12\.\.255/],
        ['identical secrets', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: 'u', password: 'same-secret-123', mutual_userid: 'm', mutual_password: 'same-secret-123' }, mapped_luns: [] }, undefined, /must differ/],
        ['bad LUN', `/v1/acls/${TARGET}/${INITIATOR}`, { mapped_luns: [{ index: -1, tpg_lun: 0 }] }, undefined, /index/],
      ];
      for (const [what, path, body, raw, re] of cases) {
        const r = await api(gw, 'PUT', path, body, raw === undefined ? {} : { raw });
        assert.equal(r.status, 400, `${what}: ${r.text}`);
        assert.match(r.body.error, re, what);
      }
      const da = await api(gw, 'PUT', '/v1/discovery-auth', { enable: true, userid: 'd', password: 'tiny' });
      assert.equal(da.status, 400);
      assert.equal((await api(gw, 'POST', '/v1/agents', {})).status, 400);
      assert.equal((await api(gw, 'GET', `/v1/acls/${TARGET}`)).text, before.text);
      assert.equal((await api(gw, 'GET', '/v1/agents')).body.policy_version, v0);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(agent.applied.length, n0, 'no snapshot pushed');
    });

    it('sets discovery auth for the fleet and pushes it without echoing secrets', async () => {
      const r = await api(gw, 'PUT', '/v1/discovery-auth', { enable: true, userid: 'disc', password: DISCOVERY_PASSWORD });
      assert.equal(r.status, 200, r.text);
      const g = await api(gw, 'GET', '/v1/discovery-auth');
      assert.deepEqual(g.body.chap, { userid: 'disc', has_password: true, has_mutual_password: false });
      const got = await waitFor('discovery auth pushed', () => agent.applied.find((a) => a.policy.version === r.body.version), 5000, 5);
      assert.equal(got.policy.discovery_auth?.password, DISCOVERY_PASSWORD);
    });

    it('records a nack; the agent keeps its policy', async () => {
      agent.reject = 'mapped LUN 7 refers to a missing TPG LUN';
      const kept = agent.current!.version;
      const r = await api(gw, 'PUT', `/v1/acls/${TARGET}/iqn.1991-05.com.microsoft:win1`, { mapped_luns: [{ index: 0, tpg_lun: 7, write_protect: false }] });
      assert.equal(r.status, 200);
      const a = await waitFor('last_error', async () => (await api(gw, 'GET', '/v1/agents')).body.agents[0].last_error, 5000);
      assert.match(a, /missing TPG LUN/);
      assert.equal(agent.current!.version, kept);
      agent.reject = undefined;
      // the next change applies and clears the error
      const d = await api(gw, 'DELETE', `/v1/acls/${TARGET}/iqn.1991-05.com.microsoft:win1`);
      assert.equal(d.status, 200);
      await waitFor('error cleared', async () => (await api(gw, 'GET', '/v1/agents')).body.agents[0].last_error === null, 5000);
    });

    it('DELETE ACL pushes a snapshot without it within 5 s', async () => {
      const t0 = Date.now();
      const r = await api(gw, 'DELETE', `/v1/acls/${TARGET}/${INITIATOR}`);
      assert.equal(r.status, 200);
      const got = await waitFor('snapshot without the ACL', () => agent.applied.find((a) => a.policy.version === r.body.version), 5000, 5);
      console.log(`# [${gw.kind}] DELETE ACL → agent applied snapshot in ${got.at - t0} ms`);
      assert.deepEqual(got.policy.targets[TARGET], []);
      assert.equal((await api(gw, 'DELETE', `/v1/acls/${TARGET}/${INITIATOR}`)).status, 404);
      // put it back for the following tests
      assert.equal((await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: 'host-a', password: PASSWORD }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] })).status, 200);
    });

    it('a malformed or oversized frame closes only that socket', async () => {
      const bad = await rawSocket(gw.url, agentToken);
      bad.send(Buffer.from([0xc1, 0xff, 0x00, 0x13]));
      const c1 = await closed(bad);
      assert.ok(c1 === 1007 || c1 === 1002, `malformed frame closed with ${c1}`);
      const notMap = await rawSocket(gw.url, agentToken);
      notMap.send(encodeMessage({ type: 'ack', version: 1 }).subarray(0, 3));
      assert.equal(await closed(notMap), 1007);
      const big = await rawSocket(gw.url, agentToken);
      big.on('error', () => {});
      big.send(Buffer.alloc(1024 * 1024 + 100, 0x41));
      const c3 = await closed(big);
      assert.ok(c3 === 1009 || c3 === 1006, `oversized frame closed with ${c3}`);
      // the real link is still up and still receives pushes
      assert.equal(link!.connected, true);
      const n = agent.applied.length;
      const r = await api(gw, 'PUT', `/v1/acls/${TARGET}/iqn.1998-01.com.vmware:esx1`, { mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: true }] });
      assert.equal(r.status, 200);
      await waitFor('push after bad frames', () => agent.applied.length > n, 5000);
      // a bad token is refused at upgrade
      await assert.rejects(rawSocket(gw.url, 'opa_not-a-token'), /401/);
    });

    it('the link reconnects by itself when the gateway returns', async () => {
      await gw.stop();
      await waitFor('link down', () => !link!.connected, 10_000);
      await gw.start();
      const t0 = Date.now();
      await waitFor('link back', async () => (await api(gw, 'GET', '/v1/agents')).body.agents[0].connected, 30_000, 100);
      console.log(`# [${gw.kind}] link reconnected ${Date.now() - t0} ms after the gateway came back`);
      const n = agent.applied.length;
      const r = await api(gw, 'PUT', `/v1/acls/${TARGET}/iqn.1998-01.com.vmware:esx2`, { mapped_luns: [] });
      await waitFor('push after reconnect', () => agent.applied.find((a) => a.policy.version === r.body.version), 5000);
      assert.ok(agent.applied.length > n);
    });

    it('DELETE /v1/agents/{id} revokes the token and closes its socket', async () => {
      const extra = await api(gw, 'POST', '/v1/agents', { name: 'to-revoke' });
      const sock = await rawSocket(gw.url, extra.body.token);
      sock.send(encodeMessage({ type: 'hello', agent_version: 't', applied_version: 0, served_targets: [OTHER_TARGET] }));
      await waitFor('second agent connected', async () => (await api(gw, 'GET', '/v1/agents')).body.agents.find((a: any) => a.id === extra.body.id)?.connected, 5000);
      const d = await api(gw, 'DELETE', `/v1/agents/${extra.body.id}`);
      assert.equal(d.status, 200);
      assert.equal(await closed(sock), 1008);
      await assert.rejects(rawSocket(gw.url, extra.body.token), /401/);
      assert.equal((await api(gw, 'DELETE', `/v1/agents/${extra.body.id}`)).status, 404);
      assert.equal((await api(gw, 'GET', '/v1/agents')).body.agents.find((a: any) => a.id === agentId).connected, true);
    });

    fleetPolicyTests({ gw: () => gw, agent, agentId: () => agentId, extraAgent });
    fleetScaleTests({ gw: () => gw });

    it('no secret appears in clear text in storage, responses, logs or the agent state dir', async () => {
      const inStorage = await filesContaining(gw.storageDir, [...SECRETS, agentToken]);
      assert.deepEqual(inStorage, [], 'gateway storage');
      assert.deepEqual(await filesContaining(stateDir, SECRETS), [], 'agent state dir');
      for (const s of SECRETS) {
        assert.ok(!gw.responses.some((t) => t.includes(s)), 'responses');
        assert.ok(!gw.logs().includes(s), 'gateway logs');
        assert.ok(!linkLogs.join('').includes(s), 'link logs');
      }
      assert.ok(gw.responses.length > 20);
    });
  });
}
