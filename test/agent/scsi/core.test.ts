// Target core pipeline (SAM-5/SPC-4/SBC-4) driven with hand-built ScsiCommands against real backstores.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { Ramdisk } from '../../../agent/backstores/ramdisk.js';
import { ScsiStatus, TaskAttribute, TmfFunction, TmfResponse } from '../../../agent/scsi/port.js';
import { clearUa, nexus, rig, senseOf } from './harness.js';

const u32 = (n: number) => n.toString(16).padStart(8, '0');
const u16 = (n: number) => n.toString(16).padStart(4, '0');
const read10 = (lba: number, n: number) => `28 00 ${u32(lba)} 00 ${u16(n)} 00`;
const write10 = (lba: number, n: number) => `2a 00 ${u32(lba)} 00 ${u16(n)} 00`;

describe('target core pipeline', () => {
  it('reports the power-on unit attention once, but not to INQUIRY', async () => {
    const r = await rig();
    try {
      const nx = nexus(1);
      r.core.nexusCreated(nx, r.luns);
      const inq = await r.run('12 00 00 00 24 00', { nx });
      assert.equal(inq.status, ScsiStatus.GOOD);
      const tur = await r.run('00', { nx });
      assert.equal(tur.status, ScsiStatus.CHECK_CONDITION);
      assert.deepEqual(senseOf(tur), [0x6, 0x2900]);
      assert.equal((await r.run('00', { nx })).status, ScsiStatus.GOOD);
    } finally {
      await r.close();
    }
  });

  it('answers INQUIRY on an unmapped LUN with qualifier 3 and refuses other commands', async () => {
    const r = await rig();
    try {
      const inq = await r.run('12 00 00 00 24 00', { lun: 5 });
      assert.equal(inq.status, ScsiStatus.GOOD);
      assert.equal(inq.data![0], 0x7f);
      assert.deepEqual(senseOf(await r.run('00', { lun: 5 })), [0x5, 0x2500]);
      const rl = await r.run('a0 00 00 00 00 00 00 00 01 00 00 00', { lun: 5 });
      assert.equal(rl.status, ScsiStatus.GOOD);
      assert.equal(rl.data!.readUInt32BE(0), 8);
      assert.deepEqual([...rl.data!.subarray(8, 16)], [0, 0, 0, 0, 0, 0, 0, 0]);
    } finally {
      await r.close();
    }
  });

  it('rejects reserved CDB bits with a field pointer and unknown opcodes with INVALID OPCODE', async () => {
    const r = await rig();
    try {
      const bad = await r.run('00 01');
      assert.deepEqual(senseOf(bad), [0x5, 0x2400]);
      assert.equal(bad.sense![15], 0x80 | 0x40 | 0x08 | 0); // SKSV, C/D, BPV, bit 0
      assert.equal(bad.sense!.readUInt16BE(16), 1);
      assert.deepEqual(senseOf(await r.run('ee')), [0x5, 0x2000]);
    } finally {
      await r.close();
    }
  });

  it('writes and reads back through fileio, refuses out-of-range LBAs and write-protected mappings', async () => {
    const r = await rig({ plugin: 'fileio' });
    try {
      const data = Buffer.alloc(1024);
      for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
      // Two Data-Out chunks: the core must write their concatenation.
      const w = await r.run(write10(10, 2), { data: [data.subarray(0, 100), data.subarray(100)] });
      assert.equal(w.status, ScsiStatus.GOOD);
      assert.equal(w.dataOutLength, 1024);
      const rd = await r.run(read10(10, 2));
      assert.deepEqual(rd.data, data);
      const blocks = r.lu.blocks;
      assert.deepEqual(senseOf(await r.run(read10(blocks - 1, 2))), [0x5, 0x2100]);
      r.luns.maps[0] = { ...r.luns.maps[0], writeProtect: true };
      assert.deepEqual(senseOf(await r.run(write10(0, 1), { data: [Buffer.alloc(512)] })), [0x7, 0x2700]);
    } finally {
      await r.close();
    }
  });

  it('COMPARE AND WRITE reports the miscompare offset in the information field', async () => {
    const r = await rig();
    try {
      await r.run(write10(3, 1), { data: [Buffer.alloc(512, 0x11)] });
      const verify = Buffer.alloc(512, 0x11);
      verify[77] = 0x12;
      const res = await r.run(`89 00 ${u32(0)}${u32(3)} 00 00 00 01 00 00`, { data: [verify, Buffer.alloc(512, 0x22)] });
      assert.deepEqual(senseOf(res), [0xe, 0x1d00]);
      assert.equal(res.sense![0] & 0x80, 0x80);
      assert.equal(res.sense!.readUInt32BE(3), 77);
      const ok = await r.run(`89 00 ${u32(0)}${u32(3)} 00 00 00 01 00 00`, { data: [Buffer.alloc(512, 0x11), Buffer.alloc(512, 0x22)] });
      assert.equal(ok.status, ScsiStatus.GOOD);
      assert.deepEqual((await r.run(read10(3, 1))).data, Buffer.alloc(512, 0x22));
    } finally {
      await r.close();
    }
  });

  it('UNMAP deallocates on fileio: the blocks read back as zeros', async () => {
    const r = await rig({ plugin: 'fileio' });
    try {
      await r.run(write10(0, 4096), { data: [Buffer.alloc(4096 * 512, 0xab)] });
      const p = Buffer.alloc(24);
      p.writeUInt16BE(22, 0);
      p.writeUInt16BE(16, 2);
      p.writeUInt32BE(4096, 16); // LBA 0, 4096 blocks (2 MiB: punched as a hole)
      assert.equal((await r.run('42 00 00 00 00 00 00 00 18 00', { data: [p] })).status, ScsiStatus.GOOD);
      const rd = await r.run(read10(0, 4096));
      assert.ok(rd.data!.equals(Buffer.alloc(4096 * 512)));
    } finally {
      await r.close();
    }
  });

  it('REPORT SUPPORTED OPERATION CODES describes one command from the same table that dispatches it', async () => {
    const r = await rig();
    try {
      const res = await r.run('a3 0c 01 28 00 00 00 00 01 00 00 00');
      assert.equal(res.data![1] & 7, 3);
      assert.equal(res.data!.readUInt16BE(2), 10);
      assert.deepEqual([...res.data!.subarray(4, 14)], [0x28, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00]);
      const unsupported = await r.run('a3 0c 01 ee 00 00 00 00 01 00 00 00');
      assert.equal(unsupported.data![1] & 7, 1);
    } finally {
      await r.close();
    }
  });

  it('reports the same NAA designator on every path, with each path’s relative port', async () => {
    const r = await rig();
    try {
      const a = (await r.run('12 01 83 01 00 00', { nx: nexus(1, 1) })).data!;
      const b = (await r.run('12 01 83 01 00 00', { nx: nexus(2, 2) })).data!;
      assert.deepEqual(a.subarray(4, 24), b.subarray(4, 24));
      assert.equal(a[8] >> 4, 6); // NAA 6
      const rel = (buf: Buffer) => {
        for (let off = 4; off < buf.length; off += 4 + buf[off + 3]) if ((buf[off + 1] & 0x3f) === 0x14) return buf.readUInt16BE(off + 6);
        return -1;
      };
      assert.equal(rel(a), 1);
      assert.equal(rel(b), 2);
    } finally {
      await r.close();
    }
  });

  it('refuses media access in ALUA standby; SET TARGET PORT GROUPS activates and tells the other nexus', async () => {
    const groups = [
      { name: 'a', id: 1, accessState: 2, accessType: 3, preferred: false },
      { name: 'b', id: 2, accessState: 0, accessType: 3, preferred: true },
    ];
    const r = await rig({ aluaGroups: groups, aluaGroup: 'a' });
    try {
      const one = nexus(1, 1);
      const two = nexus(2, 2);
      r.core.nexusCreated(one, r.luns);
      r.core.nexusCreated(two, r.luns);
      await clearUa(r, two);
      assert.deepEqual(senseOf(await r.run(read10(0, 1), { nx: one })), [0x6, 0x2900]);
      assert.deepEqual(senseOf(await r.run(read10(0, 1), { nx: one })), [0x2, 0x040b]);
      const inq = await r.run('12 00 00 00 24 00', { nx: one });
      assert.equal((inq.data![5] >> 4) & 3, 3); // TPGS: implicit and explicit
      const rtpg = (await r.run('a3 0a 00 00 00 00 00 00 04 00 00 00', { nx: one })).data!;
      assert.equal(rtpg[4] & 0x0f, 2);
      assert.equal(rtpg.readUInt16BE(6), 1);
      assert.equal(rtpg[11], 2); // both paths map through group "a"
      const param = Buffer.alloc(8);
      param[4] = 0x00; // active/optimized
      param.writeUInt16BE(1, 6);
      assert.equal((await r.run('a4 0a 00 00 00 00 00 00 00 08 00 00', { nx: one, data: [param] })).status, ScsiStatus.GOOD);
      assert.equal((await r.run(read10(0, 1), { nx: one })).status, ScsiStatus.GOOD);
      assert.deepEqual(senseOf(await r.run(read10(0, 1), { nx: two })), [0x6, 0x2a06]);
    } finally {
      await r.close();
    }
  });
});

/** A ramdisk whose reads and writes wait until released (a slow or stuck backend). */
class GatedRamdisk extends Ramdisk implements Backstore {
  private gates: (() => void)[] = [];
  gated = true;
  release(): void {
    this.gated = false;
    for (const g of this.gates.splice(0)) g();
  }
  private gate(): Promise<void> {
    return this.gated ? new Promise((r) => this.gates.push(r)) : Promise.resolve();
  }
  override async read(offset: number, length: number): Promise<Buffer> {
    await this.gate();
    return super.read(offset, length);
  }
  override async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    await this.gate();
    return super.write(offset, chunks);
  }
}

describe('task management and task attributes', () => {
  it('ABORT TASK answers while the backstore is stuck and the task resolves as aborted', async () => {
    const bs = new GatedRamdisk({ name: 'g', size: 1 << 20 });
    const r = await rig({ backstore: bs });
    try {
      const nx = nexus(1);
      const pending = r.run(read10(0, 1), { nx, tag: 4242 });
      await new Promise((res) => setImmediate(res));
      const tmf = await r.core.taskManagement({ nexus: nx, luns: r.luns, fn: TmfFunction.ABORT_TASK, lun: 0, referencedTag: 4242 });
      assert.equal(tmf, TmfResponse.COMPLETE);
      const res = await pending;
      assert.equal(res.aborted, true);
      assert.equal(await r.core.taskManagement({ nexus: nx, luns: r.luns, fn: TmfFunction.ABORT_TASK, lun: 0, referencedTag: 4242 }), TmfResponse.TASK_DOES_NOT_EXIST);
      bs.release();
    } finally {
      bs.release();
      await r.close();
    }
  });

  it('LOGICAL UNIT RESET aborts other nexuses’ tasks with TASK ABORTED (TAS) and sets a reset UA', async () => {
    const bs = new GatedRamdisk({ name: 'g', size: 1 << 20 });
    const r = await rig({ backstore: bs });
    try {
      const one = nexus(1);
      const two = nexus(2, 2);
      const theirs = r.run(read10(0, 1), { nx: two });
      await new Promise((res) => setImmediate(res));
      assert.equal(await r.core.taskManagement({ nexus: one, luns: r.luns, fn: TmfFunction.LOGICAL_UNIT_RESET, lun: 0 }), TmfResponse.COMPLETE);
      assert.equal((await theirs).status, ScsiStatus.TASK_ABORTED);
      bs.release();
      assert.deepEqual(senseOf(await r.run('00', { nx: two })), [0x6, 0x2903]);
    } finally {
      bs.release();
      await r.close();
    }
  });

  it('ORDERED waits for earlier tasks and holds later SIMPLE ones back; HEAD OF QUEUE runs at once', async () => {
    const bs = new GatedRamdisk({ name: 'g', size: 1 << 20 });
    const r = await rig({ backstore: bs });
    try {
      const order: string[] = [];
      const first = r.run(write10(0, 1), { data: [Buffer.alloc(512, 1)] }).then(() => order.push('simple-1'));
      const ordered = r.run('00', { attr: TaskAttribute.ORDERED }).then(() => order.push('ordered'));
      const later = r.run('00').then(() => order.push('simple-2'));
      const head = r.run('00', { attr: TaskAttribute.HEAD_OF_QUEUE }).then(() => order.push('head'));
      await head;
      await new Promise((res) => setTimeout(res, 20));
      assert.deepEqual(order, ['head']);
      bs.release();
      await Promise.all([first, ordered, later]);
      assert.deepEqual(order, ['head', 'simple-1', 'ordered', 'simple-2']);
    } finally {
      bs.release();
      await r.close();
    }
  });
});
