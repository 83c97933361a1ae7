// RFC 7143 §6.3 (sessions, TSIH, reinstatement), §11.14 (Logout), §12.3 (SendTargets), NOP-In keepalive,
// login timeout, portals (add/remove), closeSessions/dropSessions and graceful close.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRegistry, lunView, type MutableTpg } from '../../helpers/iscsi-registry.js';
import { MemoryCoreDouble, MemoryLu } from '../../helpers/iscsi-core-double.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { startFabric, type Fabric } from '../../helpers/iscsi-fixture.js';
import { Opcode, RESERVED_TAG } from '../../../agent/iscsi/pdu/constants.js';
import { parseText, serializeText } from '../../../agent/iscsi/text/codec.js';
import { sendTargets } from '../../../agent/iscsi/discovery.js';
import type { LogoutResponse, NopIn, TextResponse } from '../../../agent/iscsi/pdu/types.js';
import type { IscsiServerOptions } from '../../../agent/iscsi/server.js';

const I = 'iqn.2026-01.test:sess-host';
const T = 'iqn.2026-01.test:sess';
const T2 = 'iqn.2026-01.test:other';
const fabrics: Fabric[] = [];
const clients: RawIscsiClient[] = [];

after(async () => {
  for (const c of clients) c.close();
  for (const f of fabrics) await f.close();
});

async function setup(opts: Partial<IscsiServerOptions> = {}) {
  const core = new MemoryCoreDouble();
  const registry = new TestRegistry();
  const fabric = await startFabric(registry, core, opts);
  fabrics.push(fabric);
  const lu = new MemoryLu('s', 1 << 20);
  registry.addTarget({ name: T, tpgs: [{ tag: 3, portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: I, luns: lunView([lu]) }] }] });
  registry.addTarget({ name: T2, tpgs: [{ portals: [{ ip: '0.0.0.0', port: fabric.port }], acls: [{ initiatorName: I, luns: lunView([lu]) }] }] });
  return { core, registry, fabric };
}

async function connect(f: Fabric, port = f.port, host = '127.0.0.1'): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(port, host);
  clients.push(c);
  return c;
}

async function login(c: RawIscsiClient, o: { tsih?: number; cid?: number; target?: string } = {}) {
  const keys: [string, string][] = [['InitiatorName', I], ['SessionType', 'Normal'], ['TargetName', o.target ?? T]];
  const r = await c.loginStep(keys, { tsih: o.tsih ?? 0, cid: o.cid ?? 0 });
  assert.equal(r.h.statusClass, 0, `status ${r.h.statusClass}/${r.h.statusDetail}`);
  c.cmdSN = r.h.expCmdSN;
  return r.h;
}

test('login creates a session with a TSIH and a nexus as the contract describes', async () => {
  const { fabric, core } = await setup();
  const c = await connect(fabric);
  c.isid = '23d000000001';
  const h = await login(c);
  assert.notEqual(h.tsih, 0);
  const s = fabric.server.sessions();
  assert.equal(s.length, 1);
  assert.deepEqual({ ...s[0]!, connections: s[0]!.connections.length }, { tsih: h.tsih, targetName: T, initiatorName: I, isid: '23d000000001', tpgt: 3, connections: 1, type: 'Normal' });
  const n = core.nexusEvents[0]!.nexus;
  assert.equal(n.isid, '23d000000001');
  assert.equal(n.initiatorPortName, `${I},i,0x23d000000001`);
  assert.equal(n.targetPortName, `${T},t,0x0003`);
  assert.equal(n.relativeTargetPortId, 3);
  assert.equal(n.id, `${I},i,0x23d000000001|${T},t,0x0003`);
});

test('session reinstatement: same initiator and ISID with TSIH 0 closes the old session', async () => {
  const { fabric, core } = await setup();
  const a = await connect(fabric);
  a.isid = '23d000000002';
  const ha = await login(a);
  const b = await connect(fabric);
  b.isid = '23d000000002';
  const hb = await login(b);
  assert.equal(await a.waitClosed(), true);
  assert.notEqual(hb.tsih, ha.tsih);
  assert.deepEqual(fabric.server.sessions().map((s) => s.tsih), [hb.tsih]);
  assert.deepEqual(core.nexusEvents.map((e) => e.event), ['created', 'lost', 'created']);
});

test('connection reinstatement: a login with the TSIH and the same CID replaces the old connection', async () => {
  const { fabric, core } = await setup();
  const a = await connect(fabric);
  const ha = await login(a, { cid: 7 });
  const b = await connect(fabric);
  b.isid = a.isid;
  const hb = await login(b, { tsih: ha.tsih, cid: 7 });
  assert.equal(hb.tsih, ha.tsih);
  assert.equal(await a.waitClosed(), true);
  assert.equal(fabric.server.sessions()[0]?.connections.length, 1);
  assert.deepEqual(core.nexusEvents.map((e) => e.event), ['created']);
  const itt = b.nopOut();
  assert.equal((await b.next())?.header.itt, itt);
});

test('multiple connections per session (MaxConnections=2): CmdSN spans connections; closing one keeps the session', async () => {
  const { fabric, registry, core } = await setup();
  (registry.target(T)!.tpgs[0] as { parameters: Record<string, string> }).parameters = { MaxConnections: '2' };
  const a = await connect(fabric);
  const r = await a.loginStep([['InitiatorName', I], ['SessionType', 'Normal'], ['TargetName', T], ['MaxConnections', '4']], { cid: 1 });
  assert.equal(r.keys.get('MaxConnections'), '2');
  a.cmdSN = r.h.expCmdSN;
  const b = await connect(fabric);
  b.isid = a.isid;
  const hb = await login(b, { tsih: r.h.tsih, cid: 2 });
  assert.equal(hb.tsih, r.h.tsih);
  const third = await connect(fabric);
  third.isid = a.isid;
  const t3 = await third.loginStep([['InitiatorName', I], ['SessionType', 'Normal'], ['TargetName', T]], { tsih: r.h.tsih, cid: 3 });
  assert.equal((t3.h.statusClass << 8) | t3.h.statusDetail, 0x0206); // too many connections
  // CmdSN is per session: the command on b (CmdSN n+1) waits for a's (CmdSN n), sent later.
  const n = a.cmdSN;
  const before = core.commands.length;
  const cmd = (itt: number, cmdSN: number) => ({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN, expStatSN: 0, cdb: Buffer.alloc(16) } as const);
  b.send(cmd(501, (n + 1) >>> 0));
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(core.commands.length, before, 'a command ahead of the window gap ran early');
  a.send(cmd(500, n));
  assert.equal((await a.next())?.header.itt, 500);
  assert.equal((await b.next())?.header.itt, 501);
  assert.deepEqual(core.commands.slice(before).map((c) => c.tag), [500, 501]);
  // Logout of connection 2 only: the session and connection 1 stay.
  b.send({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, itt: 60, reason: 1, cid: 2, cmdSN: (n + 2) >>> 0, expStatSN: 0 });
  assert.equal(((await b.next())?.header as LogoutResponse).response, 0);
  assert.equal(await b.waitClosed(), true);
  assert.equal(fabric.server.sessions()[0]?.connections.length, 1);
  const itt = a.nopOut();
  assert.equal((await a.next())?.header.itt, itt);
});

test('logout closes the session (Time2Wait from negotiation) and the core hears nexusLost; reason 2 is refused at ERL 0', async () => {
  const { fabric, core } = await setup();
  const c = await connect(fabric);
  await login(c);
  c.send({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, itt: 50, reason: 2, cid: 0, cmdSN: c.cmdSN, expStatSN: c.expStatSN });
  let p = await c.next();
  assert.equal((p?.header as LogoutResponse).response, 2);
  c.send({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, itt: 51, reason: 0, cid: 0, cmdSN: c.cmdSN, expStatSN: c.expStatSN });
  p = await c.next();
  assert.equal(p?.header.opcode, Opcode.LOGOUT_RESPONSE);
  assert.equal((p?.header as LogoutResponse).response, 0);
  assert.equal((p?.header as LogoutResponse).time2Wait, 2);
  assert.equal(await c.waitClosed(), true);
  assert.deepEqual(core.nexusEvents.map((e) => e.event), ['created', 'lost']);
  assert.equal(fabric.server.sessions().length, 0);
});

test('SendTargets in a normal session reports the session\'s target; a 0.0.0.0 portal is reported as the arrival address', async () => {
  const { fabric } = await setup();
  const c = await connect(fabric);
  await login(c, { target: T2 });
  c.send({ opcode: Opcode.TEXT_REQUEST, immediate: false, itt: 9, final: true, cont: false, lun: 0, ttt: RESERVED_TAG, cmdSN: c.cmdSN++, expStatSN: c.expStatSN }, [serializeText([['SendTargets', 'All']])]);
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.TEXT_RESPONSE);
  assert.deepEqual(parseText(p!.data), [['TargetName', T2], ['TargetAddress', `127.0.0.1:${fabric.port},1`]]);
});

test('a discovery session lists every reachable target and may not send SCSI commands', async () => {
  const { fabric } = await setup();
  const c = await connect(fabric);
  const r = await c.login(I);
  c.cmdSN = r.h.expCmdSN;
  c.send({ opcode: Opcode.TEXT_REQUEST, immediate: false, itt: 9, final: true, cont: false, lun: 0, ttt: RESERVED_TAG, cmdSN: c.cmdSN++, expStatSN: c.expStatSN }, [serializeText([['SendTargets', 'All']])]);
  const p = await c.next();
  const names = parseText(p!.data).filter(([k]) => k === 'TargetName').map(([, v]) => v);
  assert.deepEqual(names.sort(), [T2, T].sort());
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 10, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: c.cmdSN, expStatSN: 0, cdb: Buffer.alloc(16) });
  assert.equal((await c.next())?.header.opcode, Opcode.REJECT);
});

test('a SendTargets answer longer than the initiator\'s MaxRecvDataSegmentLength comes in C-bit parts', async () => {
  const { fabric, registry } = await setup();
  for (let i = 0; i < 60; i++) registry.addTarget({ name: `iqn.2026-01.test:many-${i}`, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], generateNodeAcls: true }] });
  const c = await connect(fabric);
  const r = await c.login(I, undefined, [['MaxRecvDataSegmentLength', '512']]);
  c.cmdSN = r.h.expCmdSN;
  c.send({ opcode: Opcode.TEXT_REQUEST, immediate: false, itt: 9, final: true, cont: false, lun: 0, ttt: RESERVED_TAG, cmdSN: c.cmdSN++, expStatSN: c.expStatSN }, [serializeText([['SendTargets', 'All']])]);
  const parts: Buffer[] = [];
  for (let i = 0; i < 200; i++) {
    const p = await c.next();
    assert.equal(p?.header.opcode, Opcode.TEXT_RESPONSE);
    const h = p!.header as TextResponse;
    assert.ok(p!.data.length <= 512);
    parts.push(p!.data);
    if (h.final) {
      assert.equal(h.ttt, RESERVED_TAG);
      break;
    }
    assert.equal(h.cont, true);
    c.send({ opcode: Opcode.TEXT_REQUEST, immediate: false, itt: 9, final: true, cont: false, lun: 0, ttt: h.ttt, cmdSN: c.cmdSN++, expStatSN: c.expStatSN }, []);
  }
  assert.ok(parts.length > 5);
  const names = parseText(Buffer.concat(parts)).filter(([k]) => k === 'TargetName');
  assert.equal(names.length, 62);
});

test('SendTargets formats IPv6 portals in brackets', () => {
  const tpg = { enabled: true, tag: 2, generateNodeAcls: true, portals: [{ ip: '::1', port: 3260 }, { ip: '::', port: 3261 }], acl: () => undefined };
  const registry = { targets: () => [{ name: 'iqn.x', tpgs: [tpg] }], target: () => ({ name: 'iqn.x', tpgs: [tpg] }), discoveryAuth: () => ({ enabled: false }) } as never;
  assert.deepEqual(sendTargets(registry, 'iqn.i', 'All', { ip: 'fe80::5', port: 3261 }), [
    ['TargetName', 'iqn.x'], ['TargetAddress', '[::1]:3260,2'], ['TargetAddress', '[fe80::5]:3261,2'],
  ]);
});

test('NOP-In keepalive: an idle connection is pinged; no answer drops it, an answer keeps it', async () => {
  const { fabric } = await setup({ nopInIntervalMs: 100, nopInTimeoutMs: 600 });
  const silent = await connect(fabric);
  await login(silent);
  const p = await silent.next(2000);
  assert.equal(p?.header.opcode, Opcode.NOP_IN);
  const ping = p!.header as NopIn;
  assert.equal(ping.itt, RESERVED_TAG);
  assert.notEqual(ping.ttt, RESERVED_TAG);
  assert.equal(await silent.waitClosed(3000), true);

  const polite = await connect(fabric);
  await login(polite);
  const deadline = Date.now() + 1200;
  while (Date.now() < deadline) {
    const q = await polite.next(500);
    if (q?.header.opcode === Opcode.NOP_IN) {
      polite.send({ opcode: Opcode.NOP_OUT, immediate: true, itt: RESERVED_TAG, lun: 0, ttt: (q.header as NopIn).ttt, cmdSN: polite.cmdSN, expStatSN: polite.expStatSN });
    }
  }
  assert.equal(polite.closed, false);
});

test('a connection that never finishes login is closed after loginTimeoutMs', async () => {
  const { fabric } = await setup({ loginTimeoutMs: 200 });
  const c = await connect(fabric);
  assert.equal(await c.waitClosed(2000), true);
});

test('removePortal closes that portal\'s connections only; closeSessions ends an initiator\'s sessions', async () => {
  const { fabric, registry } = await setup();
  const second = await fabric.server.addPortal({ ip: '127.0.0.2', port: 0 });
  assert.equal((await fabric.server.addPortal({ ip: '127.0.0.2', port: second.port })).port, second.port); // idempotent
  (registry.target(T)!.tpgs[0] as MutableTpg).portals.push(second);
  const a = await connect(fabric);
  await login(a);
  const b = await connect(fabric, second.port, '127.0.0.2');
  await login(b);
  assert.equal(fabric.server.listening().length, 2);
  await fabric.server.removePortal(second);
  assert.equal(await b.waitClosed(), true);
  assert.equal(a.closed, false);
  assert.equal(fabric.server.closeSessions(T, I), 1);
  assert.equal(await a.waitClosed(), true);
  assert.equal(fabric.server.sessions().length, 0);
});

test('dropSessions compares iSCSI names case-insensitively (RFC 3722) and ends only that initiator\'s sessions on that target', async () => {
  const { fabric } = await setup();
  const a = await connect(fabric);
  await login(a);
  const other = await connect(fabric);
  await login(other, { target: T2 });
  assert.equal(fabric.server.dropSessions(T.toUpperCase(), 'iqn.2026-01.test:someone-else', 'credentials changed'), 0);
  assert.equal(fabric.server.dropSessions(T.toUpperCase(), I.toUpperCase(), 'credentials changed'), 1);
  assert.equal(await a.waitClosed(), true);
  assert.equal(other.closed, false);
  assert.deepEqual(fabric.server.sessions().map((s) => s.targetName), [T2]);
  assert.equal(fabric.server.dropSessions('IQN.2026-01.TEST:OTHER', undefined, 'target deleted'), 1);
  assert.equal(await other.waitClosed(), true);
});

test('close() lets an in-flight command finish before closing', async () => {
  const { fabric, core } = await setup();
  const c = await connect(fabric);
  await login(c);
  let release!: () => void;
  core.gate = new Promise((r) => { release = r; });
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 77, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: c.cmdSN, expStatSN: 0, cdb: Buffer.alloc(16) });
  await new Promise((r) => setTimeout(r, 50));
  const closing = fabric.server.close();
  setTimeout(release, 100);
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.SCSI_RESPONSE);
  assert.equal(p?.header.itt, 77);
  await closing;
  assert.equal(await c.waitClosed(), true);
});
