// SPC-4 §6.4 EXTENDED COPY (LID1) and §6.18 RECEIVE COPY RESULTS through the real core and real backstores.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openFileio } from '../../../agent/backstores/fileio.js';
import { openRamdisk } from '../../../agent/backstores/ramdisk.js';
import { createLogicalUnit, type LogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { naaDesignator } from '../../../agent/scsi/spc/vpd.js';
import { core, Initiator, nexus, senseOf, view } from './pr-helpers.js';

let dir: string;
const opened: LogicalUnit[] = [];
before(async () => (dir = await mkdtemp(join(tmpdir(), 'outpost-xcopy-'))));
after(async () => {
  for (const lu of opened) await lu.close();
  await rm(dir, { recursive: true, force: true });
});

const MiB = 1 << 20;

function target(lu: LogicalUnit, nul = false): Buffer {
  const d = Buffer.alloc(32);
  d[0] = 0xe4;
  d[1] = nul ? 0x20 : 0;
  d[4] = 1; // binary
  d[5] = 3; // NAA, LU association
  const naa = naaDesignator(lu.wwn);
  d[7] = naa.length;
  naa.copy(d, 8);
  d.writeUIntBE(lu.blockSize, 29, 3);
  return d;
}

function segment(src: number, dst: number, blocks: number, srcLba: number, dstLba: number): Buffer {
  const d = Buffer.alloc(28);
  d[0] = 0x02;
  d.writeUInt16BE(0x18, 2);
  d.writeUInt16BE(src, 4);
  d.writeUInt16BE(dst, 6);
  d.writeUInt16BE(blocks, 10);
  d.writeBigUInt64BE(BigInt(srcLba), 12);
  d.writeBigUInt64BE(BigInt(dstLba), 20);
  return d;
}

function params(listId: number, usage: number, targets: Buffer[], segments: Buffer[]): Buffer {
  const t = Buffer.concat(targets);
  const s = Buffer.concat(segments);
  const h = Buffer.alloc(16);
  h[0] = listId;
  h[1] = usage << 3;
  h.writeUInt16BE(t.length, 2);
  h.writeUInt32BE(s.length, 8);
  return Buffer.concat([h, t, s]);
}

function xcopyCdb(len: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x83;
  c.writeUInt32BE(len, 10);
  return c;
}

function rcr(sa: number, listId = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x84;
  c[1] = sa;
  c[2] = listId;
  c.writeUInt32BE(1024, 10);
  return c;
}

async function setup(name: string) {
  const src = await createLogicalUnit({ name: `${name}-src`, wwn: `${name}-src-0001`, backstore: openRamdisk({ name, size: 8 * MiB }), attributes: {}, aluaGroups: [], stateDir: join(dir, name, 'src') });
  const dst = await createLogicalUnit({
    name: `${name}-dst`, wwn: `${name}-dst-0002`, attributes: {}, aluaGroups: [], stateDir: join(dir, name, 'dst'),
    backstore: await openFileio({ name: `${name}-dst`, path: join(dir, `${name}.img`), size: 8 * MiB, writeBack: false }),
  });
  const i = new Initiator(core(), nexus('iqn.2026-01.test:xc'), view([src, dst]));
  await i.clearUa(0);
  await i.clearUa(1);
  opened.push(src, dst);
  return { src, dst, i };
}

describe('EXTENDED COPY (LID1)', () => {
  it('copies blocks between two LUs (ramdisk → fileio) and within one LU, in chunks larger than one', async () => {
    const { src, dst, i } = await setup('copy');
    const data = Buffer.alloc(3 * MiB);
    for (let k = 0; k < data.length; k += 512) data.fill(k / 512, k, k + 512);
    await src.backstore.write(0, [data]);
    const p = params(1, 0, [target(src), target(dst)], [segment(0, 1, 6144, 0, 100), segment(0, 0, 8, 0, 10000)]);
    const r = await i.send(xcopyCdb(p.length), p);
    assert.equal(r.status, 0, senseOf(r));
    assert.ok((await dst.backstore.read(100 * 512, 3 * MiB)).equals(data));
    assert.ok((await src.backstore.read(10000 * 512, 4096)).equals(data.subarray(0, 4096)));
    const st = await i.send(rcr(0, 1));
    assert.equal(st.status, 0);
    assert.equal(st.data![4], 0x01, 'completed without errors');
    assert.equal(st.data!.readUInt16BE(5), 2, 'segments processed');
    assert.equal(st.data!.readUInt32BE(8), 3 * MiB + 4096, 'bytes moved');
    assert.equal(senseOf(await i.send(rcr(0, 9))), '5/2400', 'no copy with list id 9');
  });

  it('validates the parameter list before moving any data', async () => {
    const { src, dst, i } = await setup('bad');
    const before = await dst.backstore.read(0, 4096);
    const send = (p: Buffer, len = p.length) => i.send(xcopyCdb(len), p.subarray(0, len));
    const good = params(1, 2, [target(src), target(dst)], [segment(0, 1, 8, 0, 0)]);
    assert.equal(senseOf(await send(good, 16 + 32 - 1)), '5/1a00', 'truncated descriptor');
    const many = params(1, 2, Array.from({ length: 9 }, () => target(src)), [segment(0, 0, 1, 0, 1)]);
    assert.equal(senseOf(await send(many)), '5/2606');
    const segs = params(1, 2, [target(src)], Array.from({ length: 17 }, () => segment(0, 0, 1, 0, 1)));
    assert.equal(senseOf(await send(segs)), '5/2608');
    const fc = target(src);
    fc[0] = 0xe0;
    assert.equal(senseOf(await send(params(1, 2, [fc], [segment(0, 0, 1, 0, 1)]))), '5/2607');
    const stream = segment(0, 0, 1, 0, 1);
    stream[0] = 0x03;
    stream.writeUInt16BE(0x10, 2);
    assert.equal(senseOf(await send(params(1, 2, [target(src)], [stream.subarray(0, 20)]))), '5/2609');
    assert.equal(senseOf(await send(params(1, 2, [target(src), target(dst, true)], [segment(0, 1, 8, 0, 0)]))), 'a/0d02', 'NUL device');
    assert.equal(senseOf(await send(params(1, 2, [target(src)], [segment(0, 1, 8, 0, 0)]))), 'a/0d02', 'index beyond the list');
    assert.equal(senseOf(await send(params(1, 2, [target(src), target(dst)], [segment(0, 1, 8, 0, dst.blocks - 1)]))), 'a/0000', 'beyond the end');
    assert.ok((await dst.backstore.read(0, 4096)).equals(before), 'nothing written');
    assert.equal((await i.send(xcopyCdb(0))).status, 0, 'an empty parameter list is a no-op');
  });

  it('cannot reach an LU the initiator has no mapping for, and honours write-protected mappings', async () => {
    const { src, dst } = await setup('acl');
    const only = new Initiator(core(), nexus('iqn.2026-01.test:other'), view([src]));
    await only.clearUa();
    const p = params(1, 2, [target(src), target(dst)], [segment(0, 1, 8, 0, 0)]);
    assert.equal(senseOf(await only.send(xcopyCdb(p.length), p)), 'a/0d02');
    const ro = new Initiator(core(), nexus('iqn.2026-01.test:ro'), view([src, dst], true));
    await ro.clearUa();
    assert.equal(senseOf(await ro.send(xcopyCdb(p.length), p)), '7/2700');
  });

  it('RECEIVE COPY RESULTS reports operating parameters; VPD 8Fh and INQUIRY 3PC agree', async () => {
    const { i } = await setup('rcr');
    const op = (await i.send(rcr(3))).data!;
    assert.equal(op.readUInt16BE(8), 8);
    assert.equal(op.readUInt16BE(10), 16);
    assert.deepEqual([...op.subarray(44, 44 + op[43])], [0x02, 0xe4]);
    const inq = (await i.send(Buffer.from([0x12, 0, 0, 0, 96, 0]))).data!;
    assert.equal(inq[5] & 0x08, 0x08, '3PC');
    const pages = (await i.send(Buffer.from([0x12, 1, 0, 0, 255, 0]))).data!;
    assert.ok(pages.subarray(4).includes(0x8f));
    const tpc = (await i.send(Buffer.from([0x12, 1, 0x8f, 4, 0, 0]))).data!;
    assert.equal(tpc[1], 0x8f);
    assert.equal(tpc.readUInt16BE(4), 0x0001, 'first descriptor: supported commands');
    const list = tpc.subarray(9, 9 + tpc[8]);
    assert.deepEqual([...list], [0x83, 1, 0x00, 0x84, 2, 0x00, 0x03]);
  });
});
