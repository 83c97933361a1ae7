// Robustness over real TCP (RFC 7143 §6.9, §7, §11.17): malformed and out-of-phase input gets a Reject,
// a login error, or closes only that connection; other sessions keep working; the process survives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { MemoryCoreDouble, MemoryLu } from '../../helpers/iscsi-core-double.js';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { startFabric, type Fabric } from '../../helpers/iscsi-fixture.js';
import { Opcode, RESERVED_TAG, RejectReason } from '../../../agent/iscsi/pdu/constants.js';
import { encodeHeader, framePdu } from '../../../agent/iscsi/pdu/serializer.js';
import type { LoginResponse, Reject } from '../../../agent/iscsi/pdu/types.js';

const I = 'iqn.2026-01.test:fuzzer';
const T = 'iqn.2026-01.test:fuzz';
let fabric: Fabric;
let core: MemoryCoreDouble;
const clients: RawIscsiClient[] = [];

before(async () => {
  core = new MemoryCoreDouble();
  const registry = new TestRegistry();
  fabric = await startFabric(registry, core);
  registry.addTarget({ name: T, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: I, luns: lunView([new MemoryLu('m', 1 << 20)]) }] }] });
});

after(async () => {
  for (const c of clients) c.close();
  await fabric.close();
});

async function client(): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(fabric.port);
  clients.push(c);
  return c;
}

async function loggedIn(extra: [string, string][] = []): Promise<RawIscsiClient> {
  const c = await client();
  const r = await c.login(I, T, [['HeaderDigest', 'None'], ['DataDigest', 'None'], ...extra]);
  assert.equal(r.h.statusClass, 0, `login status ${r.h.statusClass}/${r.h.statusDetail}`);
  c.cmdSN = r.h.expCmdSN;
  return c;
}

/** A healthy second session proves the server is still up and unaffected. */
async function assertServerHealthy(): Promise<void> {
  const c = await loggedIn();
  const itt = c.nopOut([Buffer.from('ping')]);
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.NOP_IN);
  assert.equal(p?.header.itt, itt);
  assert.equal(p?.data.toString(), 'ping');
  c.close();
}

function loginStatus(p: { header: unknown } | undefined): number {
  const h = p?.header as LoginResponse;
  return (h.statusClass << 8) | h.statusDetail;
}

test('a SCSI command before login closes only that connection', async () => {
  const c = await client();
  const bhs = encodeHeader({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 1, final: true, read: true, write: false, attr: 1, lun: 0, expectedDataTransferLength: 36, cmdSN: 1, expStatSN: 0, cdb: Buffer.from([0x12, 0, 0, 0, 36, 0]) });
  c.sendRaw(bhs);
  assert.equal(await c.waitClosed(), true);
  await assertServerHealthy();
});

test('random garbage instead of a login closes the connection; truncated PDUs do no harm', async () => {
  const c = await client();
  c.sendRaw(randomBytes(200));
  assert.equal(await c.waitClosed(), true);
  const d = await client();
  d.sendRaw(Buffer.from([0x43, 0x87, 0, 0, 0, 0, 0x10]));
  d.close();
  await assertServerHealthy();
});

test('login errors carry the RFC status: missing InitiatorName, bad version, bad text, unknown session type, unknown TSIH', async () => {
  let c = await client();
  c.send(c.loginPdu([]), [Buffer.from('TargetName=' + T + '\0')]);
  assert.equal(loginStatus(await c.next()), 0x0207);
  assert.equal(await c.waitClosed(), true);

  c = await client();
  c.send(c.loginPdu([], { versionMin: 2, versionMax: 3 }), [Buffer.from(`InitiatorName=${I}\0TargetName=${T}\0`)]);
  assert.equal(loginStatus(await c.next()), 0x0205);

  c = await client();
  c.send(c.loginPdu([]), [Buffer.from(`InitiatorName=${I}\0garbage-without-equals\0`)]);
  assert.equal(loginStatus(await c.next()), 0x0200);

  c = await client();
  const st = await c.loginStep([['InitiatorName', I], ['SessionType', 'Weird']]);
  assert.equal((st.h.statusClass << 8) | st.h.statusDetail, 0x0209);

  c = await client();
  const ts = await c.loginStep([['InitiatorName', I], ['TargetName', T]], { tsih: 0x7777 });
  assert.equal((ts.h.statusClass << 8) | ts.h.statusDetail, 0x020a);
  await assertServerHealthy();
});

test('operational keys out of range are answered with Reject; unknown keys NotUnderstood', async () => {
  const c = await client();
  const r = await c.login(I, T, [['MaxBurstLength', '1'], ['X-org.example.thing', 'on'], ['ErrorRecoveryLevel', '7']]);
  assert.equal(r.h.statusClass, 0);
  assert.equal(r.keys.get('MaxBurstLength'), 'Reject');
  assert.equal(r.keys.get('MaxRecvDataSegmentLength'), '262144'); // our own declaration
  assert.equal(r.keys.get('ErrorRecoveryLevel'), 'Reject');
  assert.equal(r.keys.get('X-org.example.thing'), 'NotUnderstood');
  assert.equal(r.keys.get('TargetPortalGroupTag'), '1');
  c.close();
});

test('an unknown opcode in full feature phase gets Reject (command not supported) echoing the header; the connection lives on', async () => {
  const c = await loggedIn();
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x1c; // not an initiator opcode
  bhs.writeUInt32BE(0xabcdef01, 16);
  c.sendRaw(bhs);
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.REJECT);
  assert.equal((p!.header as Reject).reason, RejectReason.COMMAND_NOT_SUPPORTED);
  assert.equal(p!.data.readUInt32BE(16), 0xabcdef01);
  const itt = c.nopOut();
  assert.equal((await c.next())?.header.itt, itt);
  c.close();
});

test('a data segment larger than our MaxRecvDataSegmentLength: Reject, then the connection closes', async () => {
  const c = await loggedIn();
  const bhs = encodeHeader({ opcode: Opcode.NOP_OUT, immediate: true, itt: 5, lun: 0, ttt: RESERVED_TAG, cmdSN: c.cmdSN, expStatSN: 0 });
  bhs.writeUIntBE(0xffffff, 5, 3);
  c.sendRaw(bhs);
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.REJECT);
  assert.equal((p!.header as Reject).reason, RejectReason.PROTOCOL_ERROR);
  assert.equal(await c.waitClosed(), true);
  await assertServerHealthy();
});

test('header digest error closes the connection; data digest error is rejected and the connection continues', async () => {
  const c = await loggedIn([]);
  // Negotiate digests on a fresh connection.
  const d = await client();
  const r = await d.login(I, T, [['HeaderDigest', 'CRC32C'], ['DataDigest', 'CRC32C']]);
  assert.equal(r.keys.get('HeaderDigest'), 'CRC32C');
  assert.equal(r.keys.get('DataDigest'), 'CRC32C');
  d.cmdSN = r.h.expCmdSN;
  // Good PDU with digests works.
  let itt = d.nopOut([Buffer.from('abc')]);
  let p = await d.next();
  assert.equal(p?.header.itt, itt);
  assert.equal(p?.data.toString(), 'abc');
  // Corrupt the data digest: Reject reason 0x02, connection stays.
  const wire = Buffer.concat(framePdu({ opcode: Opcode.NOP_OUT, immediate: true, itt: 99, lun: 0, ttt: RESERVED_TAG, cmdSN: d.cmdSN, expStatSN: 0 }, [Buffer.from('abcd')], { headerDigest: true, dataDigest: true }));
  wire[wire.length - 1] ^= 0x5a;
  d.sendRaw(wire);
  p = await d.next();
  assert.equal(p?.header.opcode, Opcode.REJECT);
  assert.equal((p!.header as Reject).reason, RejectReason.DATA_DIGEST_ERROR);
  itt = d.nopOut([Buffer.from('again')]);
  assert.equal((await d.next())?.header.itt, itt);
  // Corrupt the header digest: connection closes.
  d.headerDigest = false;
  d.sendRaw(Buffer.concat([encodeHeader({ opcode: Opcode.NOP_OUT, immediate: true, itt: 100, lun: 0, ttt: RESERVED_TAG, cmdSN: d.cmdSN, expStatSN: 0 }), Buffer.alloc(4)]));
  assert.equal(await d.waitClosed(), true);
  // The other session on the server is untouched.
  itt = c.nopOut();
  assert.equal((await c.next())?.header.itt, itt);
  c.close();
});

test('commands outside the CmdSN window are dropped silently; the next in-window one is served', async () => {
  const c = await loggedIn();
  const before = core.commands.length;
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 200, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: (c.cmdSN + 1000) >>> 0, expStatSN: 0, cdb: Buffer.alloc(16) });
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 201, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: (c.cmdSN - 5) >>> 0, expStatSN: 0, cdb: Buffer.alloc(16) });
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 202, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: c.cmdSN, expStatSN: 0, cdb: Buffer.alloc(16) });
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.SCSI_RESPONSE);
  assert.equal(p?.header.itt, 202);
  assert.equal(core.commands.length, before + 1);
  c.close();
});

test('PDUs of the wrong kind in full feature phase (a target opcode, a second login, SNACK) get Reject', async () => {
  const c = await loggedIn();
  for (const op of [Opcode.NOP_IN, Opcode.LOGIN_REQUEST, Opcode.SNACK_REQUEST]) {
    const bhs = Buffer.alloc(48);
    bhs[0] = op;
    bhs[1] = 0x80;
    c.sendRaw(bhs);
    const p = await c.next();
    assert.equal(p?.header.opcode, Opcode.REJECT, `opcode 0x${op.toString(16)}`);
  }
  c.close();
});

test('fuzz: 300 random well-framed PDUs never crash the server', async () => {
  for (let round = 0; round < 3; round++) {
    const c = await loggedIn();
    for (let i = 0; i < 100; i++) {
      const bhs = randomBytes(48);
      const len = bhs[5] = bhs[6] = 0;
      bhs[7] = (i * 4) & 0xff;
      bhs[4] = i % 7 === 0 ? 1 : 0;
      const ahs = bhs[4] ? Buffer.from([0, 1, 1, 0]) : Buffer.alloc(0);
      c.sendRaw(Buffer.concat([bhs, ahs, Buffer.alloc(bhs[7]! + ((4 - (bhs[7]! & 3)) & 3) + len)]));
    }
    c.close();
  }
  await new Promise((r) => setTimeout(r, 200));
  await assertServerHealthy();
});

test('a rejected command still uses its CmdSN: the next command is served, not held back', async () => {
  const c = await loggedIn();
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 300, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: c.cmdSN++, expStatSN: 0, cdb: Buffer.alloc(16) }, [Buffer.from('data without W')]);
  const rej = await c.next();
  assert.equal(rej?.header.opcode, Opcode.REJECT);
  assert.equal((rej!.header as Reject).reason, RejectReason.PROTOCOL_ERROR);
  c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 301, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: c.cmdSN++, expStatSN: 0, cdb: Buffer.alloc(16) });
  const p = await c.next();
  assert.equal(p?.header.opcode, Opcode.SCSI_RESPONSE);
  assert.equal(p?.header.itt, 301);
  c.close();
});

test('a core that throws or rejects yields CHECK CONDITION (HARDWARE ERROR), not a dead connection', async () => {
  const c = await loggedIn();
  for (const mode of ['throw', 'reject'] as const) {
    core.failNext = mode;
    const itt = c.nextItt();
    c.send({ opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: false, write: false, attr: 1, lun: 0, expectedDataTransferLength: 0, cmdSN: c.cmdSN++, expStatSN: 0, cdb: Buffer.alloc(16) });
    const p = await c.next();
    assert.equal(p?.header.opcode, Opcode.SCSI_RESPONSE, mode);
    assert.equal((p!.header as { status: number }).status, 2);
    assert.equal(p!.data[2 + 2]! & 0x0f, 0x04);
  }
  c.close();
});
