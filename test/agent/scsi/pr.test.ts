// SPC-4 §5.13 persistent reservations and SPC-2 RESERVE/RELEASE through the real core and real backstores.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openFileio } from '../../../agent/backstores/fileio.js';
import { openRamdisk } from '../../../agent/backstores/ramdisk.js';
import { createLogicalUnit, type LogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { TmfFunction } from '../../../agent/scsi/port.js';
import { core, Initiator, nexus, prin, prout, read10, senseOf, view, write10 } from './pr-helpers.js';

const RC = 0x18;
const WE = 1, EA = 3, WE_RO = 5, EA_RO = 6, WE_AR = 7, EA_AR = 8;
const REGISTER = 0, RESERVE = 1, RELEASE = 2, CLEAR = 3, PREEMPT = 4, PREEMPT_ABORT = 5, REG_IGNORE = 6, REG_MOVE = 7;

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), 'outpost-pr-'))));
after(() => rm(dir, { recursive: true, force: true }));

async function ramLu(name: string): Promise<LogicalUnit> {
  return createLogicalUnit({ name, wwn: `wwn-${name}`, backstore: openRamdisk({ name, size: 1 << 20 }), attributes: {}, aluaGroups: [], stateDir: join(dir, name) });
}

async function setup(name: string) {
  const lu = await ramLu(name);
  const c = core();
  const luns = view([lu]);
  const a = new Initiator(c, nexus('iqn.2026-01.test:a'), luns);
  const b = new Initiator(c, nexus('iqn.2026-01.test:b'), luns);
  await a.clearUa();
  await b.clearUa();
  return { lu, c, a, b, luns };
}

async function out(i: Initiator, sa: number, type: number, key: bigint, saKey: bigint, flags = 0) {
  const [cdb, p] = prout(sa, type, key, saKey, flags);
  return i.send(cdb, p);
}

async function keys(i: Initiator): Promise<bigint[]> {
  const r = await i.send(prin(0));
  assert.equal(r.status, 0);
  const n = r.data!.readUInt32BE(4) / 8;
  return Array.from({ length: n }, (_, k) => r.data!.readBigUInt64BE(8 + k * 8));
}

async function reservation(i: Initiator): Promise<{ key: bigint; type: number } | undefined> {
  const r = await i.send(prin(1));
  assert.equal(r.status, 0);
  if (r.data!.readUInt32BE(4) === 0) return undefined;
  return { key: r.data!.readBigUInt64BE(8), type: r.data![21] & 0x0f };
}

describe('PERSISTENT RESERVE OUT/IN', () => {
  it('registers, changes and removes keys; generation counts registrations only', async () => {
    const { a } = await setup('reg');
    assert.deepEqual(await keys(a), []);
    assert.equal((await out(a, REGISTER, 0, 0n, 0xabn)).status, 0);
    assert.deepEqual(await keys(a), [0xabn]);
    // Wrong current key: conflict, nothing changes.
    assert.equal((await out(a, REGISTER, 0, 0x1n, 0xcdn)).status, RC);
    assert.equal((await out(a, REGISTER, 0, 0xabn, 0xcdn)).status, 0);
    assert.equal((await out(a, REG_IGNORE, 0, 0n, 0xefn)).status, 0);
    assert.deepEqual(await keys(a), [0xefn]);
    const gen = (await a.send(prin(0))).data!.readUInt32BE(0);
    assert.equal((await out(a, RESERVE, WE, 0xefn, 0n)).status, 0);
    assert.equal((await a.send(prin(0))).data!.readUInt32BE(0), gen, 'RESERVE does not bump PRgeneration');
    assert.equal((await out(a, REGISTER, 0, 0xefn, 0n)).status, 0);
    assert.deepEqual(await keys(a), []);
    assert.equal(await reservation(a), undefined, 'unregistering the holder releases the reservation');
  });

  it('refuses bad parameter list lengths, scopes, types and SPEC_I_PT/ALL_TG_PT', async () => {
    const { a } = await setup('bad');
    const [cdb, p] = prout(REGISTER, 0, 0n, 1n, 0, 23);
    assert.equal(senseOf(await a.send(cdb, p)), '5/1a00');
    assert.equal(senseOf(await out(a, REGISTER, 0, 0n, 1n, 0x08)), '5/2600');
    assert.equal(senseOf(await out(a, REGISTER, 0, 0n, 1n, 0x04)), '5/2600');
    assert.deepEqual(await keys(a), [], 'nothing registered by refused commands');
    await out(a, REGISTER, 0, 0n, 1n);
    assert.equal(senseOf(await out(a, RESERVE, 2, 1n, 0n)), '5/2400', 'type 2 is not a reservation type');
    assert.equal(senseOf(await out(a, RESERVE, 0x10 | WE, 1n, 0n)), '5/2400', 'only LU scope');
    assert.equal(senseOf(await a.send(prin(4))), '5/2400');
  });

  const access: [string, number, boolean, boolean, boolean, boolean][] = [
    // type, reg read, reg write, unreg read, unreg write (libiscsi's table, SPC-4 table 63)
    ['WE', WE, true, false, true, false],
    ['EA', EA, false, false, false, false],
    ['WE-RO', WE_RO, true, true, true, false],
    ['EA-RO', EA_RO, true, true, false, false],
    ['WE-AR', WE_AR, true, true, true, false],
    ['EA-AR', EA_AR, true, true, false, false],
  ];
  for (const [name, type, rr, rw, ur, uw] of access) {
    it(`applies the conflict table for ${name}`, async () => {
      const { a, b } = await setup(`acc-${type}`);
      await out(a, REGISTER, 0, 0n, 0xa1n);
      await out(b, REGISTER, 0, 0n, 0xb1n);
      assert.equal((await out(a, RESERVE, type, 0xa1n, 0n)).status, 0);
      const rsv = await reservation(b);
      assert.deepEqual(rsv, { key: type >= 7 ? 0n : 0xa1n, type });
      const block = Buffer.alloc(512, 7);
      assert.equal((await a.send(read10(1, 1))).status, 0);
      assert.equal((await a.send(write10(1, 1), block)).status, 0);
      assert.equal((await b.send(read10(1, 1))).status === 0, rr);
      assert.equal((await b.send(write10(1, 1), block)).status === 0, rw);
      await out(b, REGISTER, 0, 0xb1n, 0n);
      assert.equal((await b.send(read10(1, 1))).status === 0, ur);
      assert.equal((await b.send(write10(1, 1), block)).status === 0, uw);
      // INQUIRY and PRIN never conflict.
      assert.equal((await b.send(Buffer.from([0x12, 0, 0, 0, 36, 0]))).status, 0);
    });
  }

  it('all-registrants: the reservation survives the reserver unregistering; RELEASE by another registrant ends it', async () => {
    const { a, b } = await setup('ar');
    await out(a, REGISTER, 0, 0n, 1n);
    await out(b, REGISTER, 0, 0n, 2n);
    await out(a, RESERVE, WE_AR, 1n, 0n);
    await out(a, REGISTER, 0, 1n, 0n);
    assert.deepEqual(await reservation(b), { key: 0n, type: WE_AR });
    assert.equal((await out(b, RELEASE, WE_AR, 2n, 0n)).status, 0);
    assert.equal(await reservation(b), undefined);
  });

  it('RELEASE of a registrants-only reservation sends RESERVATIONS RELEASED to other registrants; wrong type is refused', async () => {
    const { a, b } = await setup('rel');
    await out(a, REGISTER, 0, 0n, 1n);
    await out(b, REGISTER, 0, 0n, 2n);
    await out(a, RESERVE, WE_RO, 1n, 0n);
    assert.equal(senseOf(await out(a, RELEASE, EA_RO, 1n, 0n)), '5/2604');
    assert.equal((await out(b, RELEASE, WE_RO, 2n, 0n)).status, 0, 'a non-holder RELEASE is a no-op');
    assert.deepEqual(await reservation(a), { key: 1n, type: WE_RO });
    assert.equal((await out(a, RELEASE, WE_RO, 1n, 0n)).status, 0);
    assert.deepEqual(await b.clearUa(), ['6/2a04']);
  });

  it('PREEMPT takes the reservation and removes the preempted registration with a unit attention; CLEAR drops everything', async () => {
    const { a, b } = await setup('pre');
    await out(a, REGISTER, 0, 0n, 1n);
    await out(b, REGISTER, 0, 0n, 2n);
    await out(a, RESERVE, EA, 1n, 0n);
    assert.equal(senseOf(await out(b, PREEMPT, WE, 2n, 0n)), '5/2600', 'SA key 0 without an all-registrants reservation');
    assert.equal((await out(b, PREEMPT, WE, 2n, 1n)).status, 0);
    assert.deepEqual(await reservation(b), { key: 2n, type: WE });
    assert.deepEqual(await keys(b), [2n]);
    assert.deepEqual(await a.clearUa(), ['6/2a05']);
    assert.equal((await out(b, PREEMPT, WE, 2n, 0x99n)).status, RC, 'no registration with that key');
    await out(a, REGISTER, 0, 0n, 3n);
    assert.equal((await out(a, CLEAR, 0, 3n, 0n)).status, 0);
    assert.deepEqual(await keys(a), []);
    assert.equal(await reservation(a), undefined);
    assert.deepEqual(await b.clearUa(), ['6/2a03']);
  });

  it('PREEMPT AND ABORT ends the preempted nexus tasks', async () => {
    const { a, b, lu } = await setup('pa');
    await out(a, REGISTER, 0, 0n, 1n);
    await out(b, REGISTER, 0, 0n, 2n);
    await out(a, RESERVE, WE, 1n, 0n);
    // Hold one of A's tasks open with an ORDERED barrier behind a slow read: simplest is a task in the set.
    const task = lu.tasks.begin(a.nx.id, 4242, 1);
    let abortedWith: number | undefined;
    task.abortWith = (r) => (abortedWith = r.status);
    assert.equal((await out(b, PREEMPT_ABORT, EA, 2n, 1n)).status, 0);
    assert.equal(task.aborted, true);
    assert.equal(abortedWith, 0x40, 'TAS=1: TASK ABORTED status');
    lu.tasks.end(task);
    assert.deepEqual(await reservation(b), { key: 2n, type: EA });
    assert.equal((await a.send(read10(0, 1))).status, 0x02, 'A first sees its unit attention');
    assert.equal((await a.send(read10(0, 1))).status, RC);
  });

  it('REGISTER AND MOVE hands the reservation to the nexus named by the TransportID', async () => {
    const { a, b } = await setup('move');
    await out(a, REGISTER, 0, 0n, 1n);
    await out(a, RESERVE, WE, 1n, 0n);
    const tid = Buffer.alloc(4 + 52);
    tid[0] = 0x45;
    tid.writeUInt16BE(52, 2);
    tid.write(b.nx.initiatorPortName, 4);
    const p = Buffer.alloc(24 + tid.length);
    p.writeBigUInt64BE(1n, 0);
    p.writeBigUInt64BE(7n, 8);
    p[17] = 0x02; // UNREG
    p.writeUInt16BE(1, 18);
    p.writeUInt32BE(tid.length, 20);
    tid.copy(p, 24);
    const cdb = Buffer.from([0x5f, REG_MOVE, WE, 0, 0, 0, 0, 0, p.length, 0]);
    assert.equal((await a.send(cdb, p)).status, 0);
    assert.deepEqual(await keys(b), [7n]);
    assert.deepEqual(await reservation(b), { key: 7n, type: WE });
    assert.equal((await b.send(write10(0, 1), Buffer.alloc(512))).status, 0);
    assert.equal((await a.send(write10(0, 1), Buffer.alloc(512))).status, RC);
  });

  it('REPORT CAPABILITIES and READ FULL STATUS describe what is supported and who holds it', async () => {
    const { a } = await setup('caps');
    const caps = (await a.send(prin(2))).data!;
    assert.equal(caps.readUInt16BE(0), 8);
    assert.equal(caps[2] & 0x0c, 0, 'SIP_C and ATP_C are 0: PROUT refuses those bits');
    assert.equal(caps[2] & 0x01, 1, 'PTPL_C');
    assert.equal(caps.readUInt16BE(4), 0xea01);
    await out(a, REGISTER, 0, 0n, 0x55n);
    await out(a, RESERVE, EA_RO, 0x55n, 0n);
    const fs = (await a.send(prin(3))).data!;
    assert.equal(fs.readBigUInt64BE(8), 0x55n);
    assert.equal(fs[8 + 12], 1, 'R_HOLDER');
    assert.equal(fs[8 + 13], EA_RO);
    const tidLen = fs.readUInt32BE(8 + 20);
    const tid = fs.subarray(8 + 24, 8 + 24 + tidLen);
    assert.equal(tid[0], 0x45);
    assert.equal(tid.toString('utf8', 4).replace(/\0+$/, ''), a.nx.initiatorPortName);
  });

  it('APTPL persists registrations and the reservation across LU re-creation (fileio)', async () => {
    const stateDir = join(dir, 'aptpl-state');
    const make = async () =>
      createLogicalUnit({ name: 'f1', wwn: 'wwn-f1', backstore: await openFileio({ name: 'f1', path: join(dir, 'f1.img'), size: 1 << 20, writeBack: false }), attributes: {}, aluaGroups: [], stateDir });
    const lu1 = await make();
    const a1 = new Initiator(core(), nexus('iqn.2026-01.test:a'), view([lu1]));
    await a1.clearUa();
    await out(a1, REGISTER, 0, 0n, 0x77n, 0x01);
    await out(a1, RESERVE, WE, 0x77n, 0n);
    const saved = JSON.parse(await readFile(join(stateDir, 'pr.json'), 'utf8'));
    assert.equal(saved.registrants.length, 1);
    await lu1.close();
    const lu2 = await make();
    const c2 = core();
    const a2 = new Initiator(c2, nexus('iqn.2026-01.test:a'), view([lu2]));
    const b2 = new Initiator(c2, nexus('iqn.2026-01.test:b'), view([lu2]));
    await a2.clearUa();
    await b2.clearUa();
    assert.deepEqual(await keys(b2), [0x77n]);
    assert.equal((await b2.send(write10(0, 1), Buffer.alloc(512))).status, RC);
    assert.equal((await a2.send(prin(2))).data![3] & 0x01, 1, 'PTPL_A');
    // APTPL=0 on a later registration removes the saved state.
    await out(a2, REGISTER, 0, 0x77n, 0x78n, 0);
    await assert.rejects(readFile(join(stateDir, 'pr.json')));
    await lu2.close();
  });
});

describe('RESERVE/RELEASE (SPC-2)', () => {
  it('one holder; others conflict except INQUIRY/REQUEST SENSE/REPORT LUNS/RELEASE; released on nexus loss and LU reset', async () => {
    const { a, b, c, luns } = await setup('spc2');
    const reserve6 = Buffer.from([0x16, 0, 0, 0, 0, 0]);
    const release6 = Buffer.from([0x17, 0, 0, 0, 0, 0]);
    assert.equal((await a.send(reserve6)).status, 0);
    assert.equal((await a.send(reserve6)).status, 0, 're-reserve by the holder');
    assert.equal((await b.send(reserve6)).status, RC);
    assert.equal((await b.send(Buffer.from([0x1a, 0, 0x3f, 0, 255, 0]))).status, RC, 'MODE SENSE conflicts');
    assert.equal((await b.send(Buffer.from([0x12, 0, 0, 0, 36, 0]))).status, 0);
    assert.equal((await b.send(release6)).status, 0, 'RELEASE from a non-holder is a no-op');
    assert.equal((await b.send(read10(0, 1))).status, RC);
    assert.equal((await b.send(prin(0))).status, RC, 'PR commands conflict with an SPC-2 reservation');
    c.nexusLost(a.nx);
    assert.equal((await b.send(reserve6)).status, 0);
    await c.taskManagement({ nexus: b.nx, luns, fn: TmfFunction.LOGICAL_UNIT_RESET, lun: 0 });
    await a.clearUa();
    await b.clearUa();
    assert.equal((await a.send(read10(0, 1))).status, 0, 'LU reset released it');
    // With a PR registration present, RESERVE is refused (CRH=1).
    await out(a, REGISTER, 0, 0n, 1n);
    assert.equal((await b.send(reserve6)).status, RC);
  });
});
