// RFC 7143 §4.2.5, §11.3–§11.8: Data-Out gathering (immediate, unsolicited, R2T-solicited), Data-In split
// to the initiator's MaxRecvDataSegmentLength with phase-collapsed status, residuals, sense, task abort,
// and the CmdSN window opening as commands complete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { MemoryCoreDouble, MemoryLu } from '../../helpers/iscsi-core-double.js';
import { RawIscsiClient, type ReceivedPdu } from '../../helpers/iscsi-client.js';
import { startFabric, type Fabric } from '../../helpers/iscsi-fixture.js';
import { Opcode, RESERVED_TAG } from '../../../agent/iscsi/pdu/constants.js';
import type { DataIn, R2t, ScsiCommandHeader, ScsiResponseHeader, TmfResponse } from '../../../agent/iscsi/pdu/types.js';
import type { KeyValue } from '../../../agent/iscsi/text/codec.js';

const I = 'iqn.2026-01.test:data-host';
const T = 'iqn.2026-01.test:data';
const T_SHALLOW = 'iqn.2026-01.test:shallow';
let fabric: Fabric;
let core: MemoryCoreDouble;
let lu: MemoryLu;
const clients: RawIscsiClient[] = [];

before(async () => {
  core = new MemoryCoreDouble();
  lu = new MemoryLu('data', 4 << 20);
  const registry = new TestRegistry();
  fabric = await startFabric(registry, core);
  const portals = [{ ip: '127.0.0.1', port: fabric.port }];
  registry.addTarget({ name: T, tpgs: [{ portals, acls: [{ initiatorName: I, luns: lunView([lu]) }] }] });
  registry.addTarget({ name: T_SHALLOW, tpgs: [{ portals, attributes: { default_cmdsn_depth: 4 }, acls: [{ initiatorName: I, luns: lunView([lu]) }] }] });
});

after(async () => {
  for (const c of clients) c.close();
  await fabric.close();
});

async function session(keys: KeyValue[], target = T): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(fabric.port);
  clients.push(c);
  const r = await c.login(I, target, keys);
  assert.equal(r.h.statusClass, 0);
  c.cmdSN = r.h.expCmdSN;
  return c;
}

function cdb10(op: number, lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = op;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

function command(c: RawIscsiClient, o: { cdb: Buffer; read?: boolean; write?: boolean; edtl: number; immediateData?: Buffer; final?: boolean; immediate?: boolean }): number {
  const itt = c.nextItt();
  const h: ScsiCommandHeader = {
    opcode: Opcode.SCSI_COMMAND, immediate: o.immediate ?? false, itt, final: o.final ?? true, read: o.read ?? false, write: o.write ?? false,
    attr: 1, lun: 0, expectedDataTransferLength: o.edtl, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb: o.cdb,
  };
  if (!o.immediate) c.cmdSN = (c.cmdSN + 1) >>> 0;
  c.send(h, o.immediateData ? [o.immediateData] : []);
  return itt;
}

function dataOut(c: RawIscsiClient, itt: number, ttt: number, dataSN: number, offset: number, data: Buffer, final: boolean): void {
  c.send({ opcode: Opcode.DATA_OUT, immediate: false, itt, final, lun: 0, ttt, expStatSN: c.expStatSN, dataSN, bufferOffset: offset }, [data]);
}

async function next(c: RawIscsiClient): Promise<ReceivedPdu> {
  const p = await c.next();
  assert.ok(p, 'expected a PDU');
  return p;
}

test('write with InitialR2T=Yes: R2Ts of MaxBurstLength, at most MaxOutstandingR2T open, data lands in order', async () => {
  const c = await session([['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['MaxBurstLength', '16384'], ['FirstBurstLength', '16384'], ['MaxOutstandingR2T', '2'], ['MaxRecvDataSegmentLength', '8192']]);
  const payload = randomBytes(65536);
  const itt = command(c, { cdb: cdb10(0x2a, 16, 128), write: true, edtl: payload.length });
  // Before any data moves, exactly MaxOutstandingR2T R2Ts are open.
  const pending: R2t[] = [];
  pending.push((await next(c)).header as R2t, (await next(c)).header as R2t);
  assert.equal(await c.next(200), undefined, 'more R2Ts open than MaxOutstandingR2T');
  let r2ts = 2;
  const answer = (r: R2t) => {
    assert.equal(r.opcode, Opcode.R2T);
    assert.equal(r.desiredDataTransferLength, 16384);
    assert.notEqual(r.ttt, RESERVED_TAG);
    for (let off = 0, sn = 0; off < r.desiredDataTransferLength; off += 8192, sn++) {
      const at = r.bufferOffset + off;
      dataOut(c, itt, r.ttt, sn, at, payload.subarray(at, at + 8192), off + 8192 >= r.desiredDataTransferLength);
    }
  };
  for (;;) {
    const r = pending.shift();
    if (r) {
      answer(r);
      continue;
    }
    const p = await next(c);
    if (p.header.opcode === Opcode.R2T) {
      r2ts++;
      pending.push(p.header as R2t);
      continue;
    }
    assert.equal(p.header.opcode, Opcode.SCSI_RESPONSE);
    assert.equal((p.header as ScsiResponseHeader).status, 0);
    assert.equal(p.header.itt, itt);
    break;
  }
  assert.equal(r2ts, 4);
  assert.ok(lu.data.subarray(16 * 512, 16 * 512 + 65536).equals(payload));
  const seen = core.commands.at(-1)!;
  assert.equal(Buffer.concat(seen.dataOut as Buffer[]).length, 65536);
  c.close();
});

test('write with immediate data and an unsolicited burst, then R2T for the rest', async () => {
  const c = await session([['InitialR2T', 'No'], ['ImmediateData', 'Yes'], ['FirstBurstLength', '16384'], ['MaxBurstLength', '65536'], ['MaxRecvDataSegmentLength', '65536']]);
  const payload = randomBytes(32768);
  const itt = command(c, { cdb: cdb10(0x2a, 300, 64), write: true, edtl: payload.length, immediateData: payload.subarray(0, 4096), final: false });
  dataOut(c, itt, RESERVED_TAG, 0, 4096, payload.subarray(4096, 16384), true);
  const p = await next(c);
  assert.equal(p.header.opcode, Opcode.R2T);
  const r = p.header as R2t;
  assert.equal(r.bufferOffset, 16384);
  assert.equal(r.desiredDataTransferLength, 16384);
  dataOut(c, itt, r.ttt, 0, 16384, payload.subarray(16384), true);
  const rsp = await next(c);
  assert.equal(rsp.header.opcode, Opcode.SCSI_RESPONSE);
  assert.ok(lu.data.subarray(300 * 512, 300 * 512 + 32768).equals(payload));
  c.close();
});

test('read is split to the initiator\'s MaxRecvDataSegmentLength, DataSN counts up, status rides the last Data-In', async () => {
  const c = await session([['MaxRecvDataSegmentLength', '4096']]);
  lu.data.fill(0x5c, 0, 65536);
  lu.data.writeUInt32BE(0xfeedface, 65532);
  const itt = command(c, { cdb: cdb10(0x28, 0, 128), read: true, edtl: 65536 });
  const parts: Buffer[] = [];
  for (let i = 0; i < 16; i++) {
    const p = await next(c);
    assert.equal(p.header.opcode, Opcode.DATA_IN);
    const h = p.header as DataIn;
    assert.equal(h.itt, itt);
    assert.equal(h.dataSN, i);
    assert.equal(h.bufferOffset, i * 4096);
    assert.equal(p.data.length, 4096);
    assert.equal(h.hasStatus, i === 15);
    if (i === 15) {
      assert.equal(h.final, true);
      assert.equal(h.status, 0);
      assert.equal(h.underflow || h.overflow, false);
    }
    parts.push(p.data);
  }
  assert.ok(Buffer.concat(parts).equals(lu.data.subarray(0, 65536)));
  const after = await c.next(200);
  assert.equal(after, undefined, 'no separate SCSI Response after phase-collapsed status');
  c.close();
});

test('residuals: underflow (U) when less data than expected, overflow (O) when more; sense with a length prefix', async () => {
  const c = await session([]);
  const inq = Buffer.alloc(16);
  inq[0] = 0x12;
  inq.writeUInt16BE(255, 3);
  command(c, { cdb: inq, read: true, edtl: 255 });
  let p = await next(c);
  let h = p.header as DataIn;
  assert.equal(h.hasStatus, true);
  assert.equal(h.underflow, true);
  assert.equal(h.residualCount, 255 - 36);
  assert.equal(p.data.length, 36);

  command(c, { cdb: cdb10(0x28, 0, 8), read: true, edtl: 1024 });
  p = await next(c);
  h = p.header as DataIn;
  assert.equal(p.data.length, 1024);
  assert.equal(h.overflow, true);
  assert.equal(h.residualCount, 4096 - 1024);

  command(c, { cdb: cdb10(0x28, 0xfffff0, 1), read: true, edtl: 512 });
  p = await next(c);
  assert.equal(p.header.opcode, Opcode.SCSI_RESPONSE);
  const r = p.header as ScsiResponseHeader;
  assert.equal(r.status, 2);
  assert.equal(p.data.readUInt16BE(0), p.data.length - 2);
  assert.equal(p.data[2 + 2]! & 0x0f, 0x05); // ILLEGAL REQUEST
  assert.equal(r.underflow, true);
  assert.equal(r.residualCount, 512);
  c.close();
});

test('ABORT TASK of a write still waiting for Data-Out: TMF complete, the task never reaches the core', async () => {
  const c = await session([['InitialR2T', 'Yes'], ['ImmediateData', 'No']]);
  const before = core.commands.length;
  const itt = command(c, { cdb: cdb10(0x2a, 0, 8), write: true, edtl: 4096 });
  const r2t = await next(c);
  assert.equal(r2t.header.opcode, Opcode.R2T);
  const tmfItt = c.nextItt();
  c.send({ opcode: Opcode.TMF_REQUEST, immediate: true, itt: tmfItt, fn: 1, lun: 0, referencedTaskTag: itt, cmdSN: c.cmdSN, expStatSN: c.expStatSN, refCmdSN: 0, expDataSN: 0 });
  const p = await next(c);
  assert.equal(p.header.opcode, Opcode.TMF_RESPONSE);
  assert.equal(p.header.itt, tmfItt);
  assert.equal((p.header as TmfResponse).response, 0);
  assert.equal(core.commands.length, before);
  // A late Data-Out for the aborted task is dropped, and the connection still works.
  dataOut(c, itt, (r2t.header as R2t).ttt, 0, 0, Buffer.alloc(4096), true);
  const nop = c.nopOut();
  assert.equal((await next(c)).header.itt, nop);
  c.close();
});

test('the CmdSN window (default_cmdsn_depth=4) closes while commands run and opens as they complete', async () => {
  const c = await RawIscsiClient.connect(fabric.port);
  clients.push(c);
  const login = await c.login(I, T_SHALLOW, []);
  const first = login.h.expCmdSN;
  assert.equal((login.h.maxCmdSN - first) >>> 0, 3);
  c.cmdSN = first;
  let release!: () => void;
  core.gate = new Promise((r) => { release = r; });
  for (let i = 0; i < 4; i++) command(c, { cdb: Buffer.alloc(16), edtl: 0 });
  await new Promise((r) => setTimeout(r, 100));
  // Immediate NOP: the window is full (MaxCmdSN = ExpCmdSN - 1).
  c.nopOut();
  const nop = await next(c);
  assert.equal(((nop.header as { maxCmdSN: number }).maxCmdSN + 1) >>> 0, (first + 4) >>> 0);
  core.gate = undefined;
  release();
  let maxSeen = 0;
  for (let i = 0; i < 4; i++) {
    const p = await next(c);
    assert.equal(p.header.opcode, Opcode.SCSI_RESPONSE);
    maxSeen = (p.header as ScsiResponseHeader).maxCmdSN;
  }
  assert.equal(maxSeen, (first + 4 + 3) >>> 0);
  c.close();
});
