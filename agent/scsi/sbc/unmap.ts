// SBC-4 §5.32 UNMAP and §5.47–5.48 WRITE SAME 10/16 (with UNMAP and NDOB).
import { dataOutBuffer, dataOutLength, readU64 } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField, paramField } from '../sense.js';
import { checkWritable } from './read-write.js';

const PATTERN_BYTES = 1 << 20;

async function unmapBlocks(lu: LogicalUnit, lba: number, n: number): Promise<void> {
  const pending = lu.rangeLock.acquire(lba, lba + n, false);
  const held = pending instanceof Promise ? await pending : pending;
  try {
    await lu.backstore.unmap(lba * lu.blockSize, n * lu.blockSize);
  } finally {
    lu.rangeLock.release(held);
  }
}

async function unmap(c: CommandContext): Promise<CommandResult> {
  const lu = c.lu;
  if (!lu.limits.unmap) throw new SenseError('INVALID_OPCODE');
  if (c.cdb[1] & 1) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 0)); // ANCHOR: ANC_SUP=0
  checkWritable(c);
  const listLen = c.cdb.readUInt16BE(7);
  if (listLen === 0) return { dataOutLength: 0 };
  if (listLen < 8) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const avail = Math.min(listLen, dataOutLength(c.cmd));
  if (avail < 8) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const p = dataOutBuffer(c.cmd, avail);
  const descLen = p.readUInt16BE(2);
  const count = Math.floor(Math.min(descLen, avail - 8) / 16);
  if (count > lu.limits.maxUnmapDescriptors) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(2));
  const ranges: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const off = 8 + i * 16;
    const lba = readU64(p, off);
    const n = p.readUInt32BE(off + 8);
    if (lba + n > lu.blocks) throw new SenseError('LBA_OUT_OF_RANGE');
    if (n > lu.limits.maxUnmapLbaCount) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 8));
    if (n > 0) ranges.push([lba, n]);
  }
  for (const [lba, n] of ranges) await unmapBlocks(lu, lba, n);
  return { dataOutLength: avail };
}

async function writeSame(c: CommandContext, lba: number, nField: number, ndob: boolean): Promise<CommandResult> {
  const lu = c.lu;
  const byte1 = c.cdb[1];
  if (byte1 >> 5 !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7));
  if (byte1 & 0x10) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 4)); // ANCHOR
  const unmapBit = (byte1 & 0x08) !== 0;
  if (unmapBit && !lu.limits.writeSameUnmap) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 3));
  checkWritable(c);
  if (lba > lu.blocks) throw new SenseError('LBA_OUT_OF_RANGE');
  const n = nField === 0 ? lu.blocks - lba : nField; // WSNZ=0: zero means "to the end of the medium"
  if (n > lu.limits.maxWriteSameBlocks) throw new SenseError('INVALID_CDB_FIELD', cdbField(nField === 0 ? 2 : 10));
  lu.checkRange(lba, n);
  const bs = lu.blockSize;
  // Exactly one logical block of Data-Out (none with NDOB): anything else is malformed.
  if (!ndob && c.cmd.expectedOutLength !== bs) throw new SenseError('INVALID_CDB_FIELD', cdbField(nField === 0 ? 2 : 10));
  const block = ndob ? Buffer.alloc(bs) : dataOutBuffer(c.cmd, bs);
  const result = { dataOutLength: ndob ? 0 : bs };
  if (n === 0) return result;
  // LIO model: UNMAP=1 deallocates whatever the Data-Out block holds (LBPRZ=1: it reads back as zeros).
  if (unmapBit) {
    await unmapBlocks(lu, lba, n);
    return result;
  }
  // Replicate the block into a pattern buffer once, then write it in large slices.
  const perChunk = Math.max(1, Math.min(n, Math.floor(PATTERN_BYTES / bs)));
  const pattern = Buffer.allocUnsafe(perChunk * bs);
  for (let i = 0; i < perChunk; i++) block.copy(pattern, i * bs);
  const pending = lu.rangeLock.acquire(lba, lba + n, false);
  const held = pending instanceof Promise ? await pending : pending;
  try {
    for (let done = 0; done < n; ) {
      const k = Math.min(perChunk, n - done);
      await lu.backstore.write((lba + done) * bs, [pattern.subarray(0, k * bs)]);
      done += k;
    }
  } finally {
    lu.rangeLock.release(held);
  }
  return result;
}

const writeSame10 = (c: CommandContext) => writeSame(c, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7), false);
const writeSame16 = (c: CommandContext) => writeSame(c, readU64(c.cdb, 2), c.cdb.readUInt32BE(10), (c.cdb[1] & 1) !== 0);

const w = { reservation: ReservationClass.WRITE, alua: AluaClass.ACTIVE, timeout: [60, 120] as const };

export const unmapEntries: OpcodeEntry[] = [
  { ...w, opcode: 0x42, name: 'UNMAP', cdbLength: 10, usage: usage('42 01 00 00 00 00 3f ff ff 00'), dir: DataDirection.OUT, handler: unmap },
  { ...w, opcode: 0x41, name: 'WRITE SAME(10)', cdbLength: 10, usage: usage('41 f8 ff ff ff ff 3f ff ff 00'), dir: DataDirection.OUT, handler: writeSame10 },
  { ...w, opcode: 0x93, name: 'WRITE SAME(16)', cdbLength: 16, usage: usage('93 f9 ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: writeSame16 },
];
