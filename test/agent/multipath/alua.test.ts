// ALUA across two TPGs (SPC-4 §5.15): per-group states from saveconfig.json's alua_tpgs, REPORT TARGET
// PORT GROUPS on every path, NOT READY on a standby path, distinct relative ports per TPG, and a live
// state change from the shell that reaches logged-in paths as a unit attention (no LU reopen).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgentInProcess, outpost, type InProcessAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';
import type { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { INQUIRY_83, RTPG_CDB, lunUrl, multipathConfig, parseRtpg, parseVpd83, rawSession, scsi, scsiPastUa } from './helpers.js';

const ACTIVE = { ip: '127.0.0.1', port: 0 };
const STANDBY = { ip: '127.0.0.2', port: 0 };
const READ10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];
let h: InProcessAgent;
const open: RawIscsiClient[] = [];

before(async () => {
  ACTIVE.port = await freePort(ACTIVE.ip);
  STANDBY.port = await freePort(STANDBY.ip);
  h = await startAgentInProcess({
    config: multipathConfig(
      [{ tag: 1, portals: [ACTIVE], aluaGroup: 'site_a' }, { tag: 2, portals: [STANDBY], aluaGroup: 'site_b' }],
      [
        { name: 'site_a', tg_pt_gp_id: 10, alua_access_state: 0, alua_access_type: 1, preferred: 1 },
        { name: 'site_b', tg_pt_gp_id: 20, alua_access_state: 2, alua_access_type: 1, preferred: 0 },
      ],
    ),
  });
});

after(async () => {
  for (const c of open) c.close();
  await h?.cleanup();
});

async function session(p: { ip: string; port: number }, initiator: string): Promise<RawIscsiClient> {
  const c = await rawSession(p.ip, p.port, initiator);
  open.push(c);
  return c;
}

test('RTPG reports both groups with their states and member ports on every path', async () => {
  for (const p of [ACTIVE, STANDBY]) {
    const c = await session(p, 'iqn.2026-01.test:rtpg');
    const r = await scsiPastUa(c, RTPG_CDB, 1024);
    assert.equal(r.status, 0);
    const groups = parseRtpg(r.data).sort((x, y) => x.id - y.id);
    assert.deepEqual(groups, [
      { id: 10, state: 0, preferred: true, ports: [1] },
      { id: 20, state: 2, preferred: false, ports: [2] },
    ]);
  }
});

test('a standby path refuses READ with NOT READY / ASYMMETRIC ACCESS STATE STANDBY (02/04/0B); the active path reads', async () => {
  const sb = await session(STANDBY, 'iqn.2026-01.test:reader');
  const refused = await scsiPastUa(sb, READ10, 4096);
  assert.equal(refused.status, 2);
  assert.deepEqual(refused.sense, [0x02, 0x040b]);
  const inq = await scsi(sb, [0x12, 0, 0, 0, 96, 0], 96); // INQUIRY stays allowed in standby
  assert.equal(inq.status, 0);
  assert.equal((inq.data[5]! >> 4) & 3, 1, 'TPGS = implicit ALUA only');
  const act = await session(ACTIVE, 'iqn.2026-01.test:reader');
  const ok = await scsiPastUa(act, READ10, 4096);
  assert.equal(ok.status, 0);
  assert.equal(ok.data.length, 4096);
  // libiscsi's login ends with TEST UNIT READY, which standby refuses as LIO does (multipathd's tur
  // checker calls such a path "ghost"): login through the active portal works, through standby not.
  assert.equal((await run('iscsi-inq', [lunUrl(ACTIVE.ip, ACTIVE.port)])).code, 0);
  const r = await run('iscsi-inq', [lunUrl(STANDBY.ip, STANDBY.port)]);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /NOT READY|0x040b/i);
});

test('each TPG is its own target port: same NAA, different relative port and port-group designators', async () => {
  const a = parseVpd83((await scsiPastUa(await session(ACTIVE, 'iqn.2026-01.test:ids'), INQUIRY_83, 1024)).data);
  const b = parseVpd83((await scsiPastUa(await session(STANDBY, 'iqn.2026-01.test:ids'), INQUIRY_83, 1024)).data);
  const get = (d: typeof a, assoc: number, type: number) => d.find((x) => x.assoc === assoc && x.type === type)!.value;
  assert.equal(get(a, 0, 3).toString('hex'), get(b, 0, 3).toString('hex'));
  assert.equal(get(a, 1, 4).readUInt16BE(2), 1);
  assert.equal(get(b, 1, 4).readUInt16BE(2), 2);
  assert.equal(get(a, 1, 5).readUInt16BE(2), 10);
  assert.equal(get(b, 1, 5).readUInt16BE(2), 20);
  assert.match(get(b, 1, 8).toString('utf8'), /,t,0x0002\0/);
});

test('shell `set alua alua_access_state=0` fails the standby group over live: UA 2A/06, then reads; data kept', async () => {
  const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 0 64k', lunUrl(ACTIVE.ip, ACTIVE.port)]);
  assert.equal(w.code, 0, w.stderr + w.stdout);
  const sb = await session(STANDBY, 'iqn.2026-01.test:failover');
  assert.deepEqual((await scsiPastUa(sb, READ10, 4096)).sense, [0x02, 0x040b]);
  const lu = h.agent.registry.target('iqn.2026-01.dev.outpost.test:multipath')!.tpgs[0]!.demoLuns.get(0)!.lu;

  const set = await outpost(h.stateDir, ['/backstores/ramdisk/mp/alua/site_b', 'set', 'alua', 'alua_access_state=0']);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /alua_access_state is now '0'/);
  const ua = await scsi(sb, READ10, 4096);
  assert.equal(ua.status, 2);
  assert.deepEqual(ua.sense, [0x06, 0x2a06], 'ASYMMETRIC ACCESS STATE CHANGED');
  const read = await scsi(sb, READ10, 4096);
  assert.equal(read.status, 0);
  assert.ok(read.data.every((x) => x === 0x3c), 'ramdisk data survived the state change (LU not reopened)');
  assert.equal(h.agent.registry.target('iqn.2026-01.dev.outpost.test:multipath')!.tpgs[0]!.demoLuns.get(0)!.lu, lu);
  const groups = parseRtpg((await scsi(sb, RTPG_CDB, 1024)).data);
  assert.equal(groups.find((g) => g.id === 20)!.state, 0);
  assert.equal((await run('iscsi-inq', [lunUrl(STANDBY.ip, STANDBY.port)])).code, 0);
  // Bad values are refused and change nothing.
  const bad = await outpost(h.stateDir, ['/backstores/ramdisk/mp/alua/site_b', 'set', 'alua', 'alua_access_state=9']);
  assert.match(bad.stdout + bad.stderr, /Invalid value 9/);
  assert.equal(h.agent.model().storage_objects[0]!.alua_tpgs!.find((g) => g.name === 'site_b')!.alua_access_state, 0);
});
