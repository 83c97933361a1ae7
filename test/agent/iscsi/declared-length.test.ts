// RFC 7143 §11.3/§11.8 (R2T), §11.4.5 (residuals): memory follows what the CDB transfers, not what the
// initiator declares. A one-block WRITE(10) declaring 1 GiB is solicited one block and answered with the
// residual; Data-Out a session may hold is capped (TASK SET FULL beyond it) and given back when a task ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { spawnAgent, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { MemoryCoreDouble, MemoryLu } from '../../helpers/iscsi-core-double.js';
import { RawIscsiClient, type ReceivedPdu } from '../../helpers/iscsi-client.js';
import { startFabric, type Fabric } from '../../helpers/iscsi-fixture.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import type { DataIn, R2t, ScsiCommandHeader, ScsiResponseHeader, TmfResponse } from '../../../agent/iscsi/pdu/types.js';

const T = 'iqn.2026-01.dev.outpost.test:declared';
const I = 'iqn.2026-01.test:declarer';
const GiB = 1 << 30;
const TASK_SET_FULL = 0x28;
const R2T_KEYS: [string, string][] = [['HeaderDigest', 'None'], ['DataDigest', 'None'], ['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['MaxRecvDataSegmentLength', '65536']];

let agent: SpawnedAgent | undefined;
let agentPort = 0;
let fabric: Fabric;
const clients: RawIscsiClient[] = [];

before(async () => {
  agentPort = await freePort();
  agent = await spawnAgent({
    config: {
      fabric_modules: [],
      storage_objects: [{ plugin: 'rd_mcp', name: 'declared', size: 8 << 20, wwn: '0c0ffee0-3333-4222-8333-444455556666', attributes: { block_size: 512 } }],
      targets: [{
        fabric: 'iscsi', wwn: T,
        tpgs: [{
          tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 0 },
          luns: [{ index: 0, storage_object: '/backstores/ramdisk/declared' }],
          portals: [{ ip_address: '127.0.0.1', port: agentPort }],
          node_acls: [{ node_wwn: I, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] }],
        }],
      }],
    },
  });
  const registry = new TestRegistry();
  fabric = await startFabric(registry, new MemoryCoreDouble(), { maxSessionDataOutBytes: 1 << 20 });
  registry.addTarget({ name: T, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: I, luns: lunView([new MemoryLu('d', 4 << 20)]) }] }] });
});

after(async () => {
  for (const c of clients) c.close();
  await fabric.close();
  await agent?.cleanup();
});

async function session(port: number): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(port);
  clients.push(c);
  const r = await c.login(I, T, R2T_KEYS);
  assert.equal(r.h.statusClass, 0);
  c.cmdSN = r.h.expCmdSN;
  // TEST UNIT READY takes the power-on unit attention a new nexus gets, so later commands see real status.
  const tur = command(c, Buffer.alloc(16), 0, false);
  assert.equal((await c.next())?.header.itt, tur);
  return c;
}

function command(c: RawIscsiClient, cdb: Buffer, edtl: number, write = true): number {
  const itt = c.nextItt();
  const h: ScsiCommandHeader = {
    opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: !write, write, attr: 1, lun: 0,
    expectedDataTransferLength: edtl, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb,
  };
  c.cmdSN = (c.cmdSN + 1) >>> 0;
  c.send(h);
  return itt;
}

function cdb10(op: number, lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = op;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

/** Every PDU that arrives until `quietMs` pass without one. */
async function drain(c: RawIscsiClient, quietMs = 300): Promise<ReceivedPdu[]> {
  const out: ReceivedPdu[] = [];
  for (let p = await c.next(quietMs); p; p = await c.next(quietMs)) out.push(p);
  return out;
}

function dataOut(c: RawIscsiClient, itt: number, r2t: R2t, fill: number): void {
  c.send({ opcode: Opcode.DATA_OUT, immediate: false, itt, final: true, lun: 0, ttt: r2t.ttt, expStatSN: c.expStatSN, dataSN: 0, bufferOffset: r2t.bufferOffset },
    [Buffer.alloc(r2t.desiredDataTransferLength, fill)]);
}

/** Answers every R2T with data until `n` SCSI Responses arrived; returns them. */
async function serveUntil(c: RawIscsiClient, pending: ReceivedPdu[], n: number): Promise<ScsiResponseHeader[]> {
  const out: ScsiResponseHeader[] = [];
  while (out.length < n) {
    const p = pending.shift() ?? (await c.next());
    assert.ok(p, 'expected an R2T or a SCSI Response');
    if (p.header.opcode === Opcode.R2T) dataOut(c, p.header.itt, p.header as R2t, 2);
    else if (p.header.opcode === Opcode.SCSI_RESPONSE) out.push(p.header as ScsiResponseHeader);
    else assert.fail(`unexpected opcode 0x${p.header.opcode.toString(16)}`);
  }
  return out;
}

async function vmRss(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'no VmRSS');
  return Number(m[1]) * 1024;
}

test('a one-block WRITE(10) declaring 1 GiB is solicited one block, answered with the residual, and costs no memory', async (t) => {
  const c = await session(agentPort);
  const rssBefore = await vmRss(agent!.proc.pid!);
  const itt = command(c, cdb10(0x2a, 8, 1), GiB);
  const first = await drain(c);
  const r2ts = first.filter((p) => p.header.opcode === Opcode.R2T).map((p) => p.header as R2t);
  const solicited = r2ts.reduce((n, r) => n + r.desiredDataTransferLength, 0);
  assert.equal(solicited, 512, `R2Ts solicited ${solicited} bytes`);
  for (const r of r2ts) dataOut(c, itt, r, 0xab);
  const rsp = await c.next();
  assert.equal(rsp?.header.opcode, Opcode.SCSI_RESPONSE);
  const h = rsp!.header as ScsiResponseHeader;
  assert.equal(h.itt, itt);
  assert.equal(h.status, 0);
  // EDTL above what the command transferred: residual underflow of the difference (RFC 7143 §11.4.5.1).
  assert.equal(h.underflow, true);
  assert.equal(h.overflow, false);
  assert.equal(h.residualCount, GiB - 512);
  // The block landed.
  const readItt = command(c, cdb10(0x28, 8, 1), 512, false);
  const got = await c.next();
  assert.equal(got?.header.itt, readItt);
  assert.equal(got?.header.opcode, Opcode.DATA_IN);
  assert.ok(got!.data.equals(Buffer.alloc(512, 0xab)));
  assert.equal((got!.header as DataIn).hasStatus, true);
  const grown = (await vmRss(agent!.proc.pid!)) - rssBefore;
  t.diagnostic(`agent VmRSS ${rssBefore >> 10} kB before, grew by ${grown >> 10} kB`);
  assert.ok(grown < 48 << 20, `agent RSS grew by ${grown >> 20} MiB`);
});

test('a command whose length the core cannot tell, declaring 1 GiB, gets TASK SET FULL without any R2T (spawned agent)', async () => {
  const c = await session(agentPort);
  const cdb = Buffer.alloc(16);
  cdb[0] = 0xc1; // vendor-specific: unknown to the core
  const itt = command(c, cdb, GiB);
  const pdus = await drain(c);
  assert.deepEqual(pdus.map((p) => p.header.opcode), [Opcode.SCSI_RESPONSE]);
  assert.equal(pdus[0]!.header.itt, itt);
  assert.equal((pdus[0]!.header as ScsiResponseHeader).status, TASK_SET_FULL);
  // The session still works.
  const ok = command(c, cdb10(0x2a, 0, 1), 512);
  const r2t = (await c.next())!.header as R2t;
  assert.equal(r2t.opcode, Opcode.R2T);
  dataOut(c, ok, r2t, 1);
  assert.equal(((await c.next())!.header as ScsiResponseHeader).status, 0);
});

test('the session Data-Out cap: beyond it TASK SET FULL; the budget returns when tasks complete or are aborted', async () => {
  const c = await session(fabric.port);
  const size = 600 << 10; // two of these exceed the 1 MiB cap
  const a = command(c, cdb10(0x2a, 0, size / 512), size);
  const aFirst = await drain(c);
  assert.ok(aFirst.length > 0 && aFirst.every((p) => p.header.opcode === Opcode.R2T && p.header.itt === a));
  const b = command(c, cdb10(0x2a, 2048, size / 512), size);
  assert.deepEqual(await drain(c), [], 'no R2T for the command over the cap (its answer waits for CmdSN order)');
  const answers = await serveUntil(c, aFirst, 2);
  assert.deepEqual(answers.map((h) => [h.itt, h.status]).sort((x, y) => x[0]! - y[0]!), [[a, 0], [b, TASK_SET_FULL]]);
  // Budget back after completion: the same size is solicited again.
  const d = command(c, cdb10(0x2a, 0, size / 512), size);
  const dR2ts = (await drain(c)).filter((p) => p.header.opcode === Opcode.R2T);
  assert.ok(dR2ts.length > 0, 'budget released after completion');
  // … and after an abort.
  const tmfItt = c.nextItt();
  c.send({ opcode: Opcode.TMF_REQUEST, immediate: true, itt: tmfItt, fn: 1, lun: 0, referencedTaskTag: d, cmdSN: c.cmdSN, expStatSN: c.expStatSN, refCmdSN: 0, expDataSN: 0 });
  const tmf = await c.next();
  assert.equal(tmf?.header.opcode, Opcode.TMF_RESPONSE);
  assert.equal((tmf!.header as TmfResponse).response, 0);
  command(c, cdb10(0x2a, 0, size / 512), size);
  assert.ok((await drain(c)).some((p) => p.header.opcode === Opcode.R2T), 'budget released after abort');
});
