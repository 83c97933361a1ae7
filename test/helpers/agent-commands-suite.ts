// The gateway → agent command channel (shared/control-commands.ts) with a real agent process, run on the
// Node gateway and on the Workers one (agent-commands*.test.ts): ping, ALUA state changes a logged-in initiator sees (RTPG, 02/04/0A and 02/04/0C, 06/2A/06),
// bad input refused with nothing changed, an agent that is offline or never answers, snapshot routes.
import { describe, it as test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { CONTROL_PATH, decodeGatewayMessage, encodeMessage } from '../../shared/control-protocol.js';
import { spawnAgent, type SpawnedAgent } from './agent.js';
import { api, waitFor, type TestGateway } from './gateway.js';
import type { RawIscsiClient } from './iscsi-client.js';
import { freePort } from './net.js';
import { RTPG_CDB, TARGET, multipathConfig, parseRtpg, rawSession, scsi, scsiPastUa } from '../agent/multipath/helpers.js';

const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];

export function agentCommandSuite(name: string, startGw: () => Promise<TestGateway>): void {
  describe(name, () => {
    let gw: TestGateway;
    let agent: SpawnedAgent;
    let agentId: string;
    let portal: { ip: string; port: number };
    const open: RawIscsiClient[] = [];
    const sockets: WebSocket[] = [];

    before(async () => {
      gw = await startGw();
      const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'site-a' });
      assert.equal(enrolled.status, 201);
      agentId = enrolled.body.id;
      portal = { ip: '127.0.0.1', port: await freePort() };
      agent = await spawnAgent({
        config: multipathConfig([{ tag: 1, portals: [portal], aluaGroup: 'site_a' }], [{ name: 'site_a', tg_pt_gp_id: 10, alua_access_state: 0, alua_access_type: 1, preferred: 1 }]),
        env: { OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token },
      });
      await waitFor('agent connected', async () => (await api(gw, 'GET', '/v1/agents')).body.agents.find((a: { id: string }) => a.id === agentId)?.connected, 15_000, 100);
    });

    after(async () => {
      for (const c of open) c.close();
      for (const s of sockets) s.terminate();
      await agent?.cleanup();
      await gw?.dispose();
    });

    const alua = (state: unknown, lun = '0', target = TARGET) => api(gw, 'PUT', `/v1/agents/${agentId}/targets/${target}/luns/${lun}/alua`, { state });

    test('ping goes to the agent over its control socket and comes back', async () => {
      const r = await api(gw, 'POST', `/v1/agents/${agentId}/ping`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.pong, true);
      assert.ok(r.body.rtt_ms >= 0 && r.body.rtt_ms < 5000);
    });

    test('ALUA states set through the gateway reach the initiator: 2A/06, then 04/0A transitioning, 04/0C unavailable, RTPG', async () => {
      const c = await rawSession(portal.ip, portal.port, 'iqn.2026-01.test:alua-channel');
      open.push(c);
      assert.equal((await scsiPastUa(c, READ10, 4096)).status, 0);

      const t = await alua('transitioning');
      assert.equal(t.status, 200, t.text);
      assert.equal(t.body.changed, true);
      assert.deepEqual((await scsi(c, READ10, 4096)).sense, [0x06, 0x2a06], 'ASYMMETRIC ACCESS STATE CHANGED');
      assert.deepEqual((await scsi(c, READ10, 4096)).sense, [0x02, 0x040a], 'NOT READY, ASYMMETRIC ACCESS STATE TRANSITION');
      assert.equal(parseRtpg((await scsi(c, RTPG_CDB, 1024)).data)[0]!.state, 0xf);

      assert.equal((await alua('unavailable')).status, 200);
      assert.deepEqual((await scsi(c, READ10, 4096)).sense, [0x06, 0x2a06]);
      assert.deepEqual((await scsi(c, READ10, 4096)).sense, [0x02, 0x040c], 'NOT READY, TARGET PORT IN UNAVAILABLE STATE');
      assert.equal(parseRtpg((await scsi(c, RTPG_CDB, 1024)).data)[0]!.state, 3);

      assert.equal((await alua('standby')).status, 200);
      assert.deepEqual((await scsiPastUa(c, READ10, 4096)).sense, [0x02, 0x040b]);

      assert.equal((await alua('active/optimized')).status, 200);
      const ok = await scsiPastUa(c, READ10, 4096);
      assert.equal(ok.status, 0);
      const again = await alua('active/optimized');
      assert.equal(again.body.changed, false, 'setting the state it has changes nothing');
      assert.equal((await scsi(c, READ10, 4096)).status, 0, 'and raises no unit attention');
    });

    test('bad input gets a clear error and changes nothing', async () => {
      const bogus = await alua('sideways');
      assert.equal(bogus.status, 400);
      assert.match(bogus.body.error, /state must be one of/);
      const extra = await api(gw, 'PUT', `/v1/agents/${agentId}/targets/${TARGET}/luns/0/alua`, { state: 'standby', force: true });
      assert.equal(extra.status, 400);
      assert.match(extra.body.error, /unknown field "force"/);
      const noLun = await alua('standby', '7');
      assert.equal(noLun.status, 502);
      assert.match(noLun.body.error, /alua\.set failed: target .* has no LUN 7/);
      const noTarget = await alua('standby', '0', 'iqn.2026-01.dev.outpost.test:nowhere');
      assert.equal(noTarget.status, 502);
      assert.match(noTarget.body.error, /does not serve target/);
      const c = await rawSession(portal.ip, portal.port, 'iqn.2026-01.test:after-bad');
      open.push(c);
      assert.equal((await scsiPastUa(c, READ10, 4096)).status, 0, 'the LUN still serves, active/optimized');
      assert.equal((await api(gw, 'POST', '/v1/agents/no-such-agent/ping')).status, 404);
    });

    test('snapshot routes reach the agent shell: an unknown backstore is named in the error', async () => {
      const r = await api(gw, 'GET', `/v1/agents/${agentId}/backstores/novol/snapshots`);
      assert.equal(r.status, 502, r.text);
      assert.match(r.body.error, /snapshot\.list failed: .*novol/i);
      const bad = await api(gw, 'POST', `/v1/agents/${agentId}/backstores/novol/snapshots`, { name: 'a b' });
      assert.equal(bad.status, 400, 'a name that could split the shell line is refused at the gateway');
    });

    test('an enrolled agent that is offline: 503 naming it; one that never answers: 504 after the timeout', async () => {
      const other = await api(gw, 'POST', '/v1/agents', { name: 'site-silent' });
      const off = await api(gw, 'POST', `/v1/agents/${other.body.id}/ping`);
      assert.equal(off.status, 503);
      assert.match(off.body.error, new RegExp(`agent ${other.body.id} is not connected`));
      // a socket that says hello with a valid token and then ignores commands
      const ws = new WebSocket(gw.url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${other.body.token}` } });
      sockets.push(ws);
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
      ws.send(encodeMessage({ type: 'hello', agent_version: 'test', applied_version: 0, served_targets: [] }));
      await waitFor('silent agent connected', async () => (await api(gw, 'GET', '/v1/agents')).body.agents.find((a: { id: string }) => a.id === other.body.id)?.connected, 10_000, 100);
      const commands: unknown[] = [];
      // command frames only: a policy snapshot pushed meanwhile must not count as the command having arrived
      ws.on('message', (d, bin) => { if (bin && decodeGatewayMessage(d as Buffer).type === 'command') commands.push(d); });
      const t = Date.now();
      const silent = await api(gw, 'POST', `/v1/agents/${other.body.id}/ping`);
      assert.equal(silent.status, 504, silent.text);
      assert.match(silent.body.error, /did not answer ping within 15000 ms/);
      assert.ok(Date.now() - t >= 14_000);
      assert.ok(commands.length >= 1, 'the command frame did reach the socket');
      // the same socket closing while a command waits fails that command at once
      const pending = api(gw, 'POST', `/v1/agents/${other.body.id}/ping`);
      await waitFor('second command sent', () => commands.length >= 2, 5000, 20);
      ws.close();
      const lost = await pending;
      assert.equal(lost.status, 503);
      assert.match(lost.body.error, /disconnected before answering ping/);
    });
  });
}
