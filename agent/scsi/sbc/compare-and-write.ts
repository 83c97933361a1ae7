// SBC-4 §5.3 COMPARE AND WRITE (atomic under the LU range lock) and §5.7 ORWRITE(16).
import { dataOutBuffer, readU64 } from '../cdb.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';
import { checkWritable } from './read-write.js';
import { firstDifference } from './verify.js';

async function compareAndWrite(c: CommandContext): Promise<CommandResult> {
  const lu = c.lu;
  const byte1 = c.cdb[1];
  if (byte1 >> 5 !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7));
  const lba = readU64(c.cdb, 2);
  const n = c.cdb[13];
  if (n > lu.limits.maxCompareAndWriteBlocks) throw new SenseError('INVALID_CDB_FIELD', cdbField(13));
  checkWritable(c);
  lu.checkRange(lba, n);
  const bs = lu.blockSize;
  const len = n * bs;
  // The verify and write data must be exactly what the CDB describes (LIO does the same).
  if (c.cmd.expectedOutLength !== 2 * len) throw new SenseError('INVALID_CDB_FIELD', cdbField(13));
  if (n === 0) return { dataOutLength: 0 };
  const data = dataOutBuffer(c.cmd, 2 * len);
  const pending = lu.rangeLock.acquire(lba, lba + n, true);
  const held = pending instanceof Promise ? await pending : pending;
  try {
    const medium = await lu.backstore.read(lba * bs, len);
    const d = firstDifference(medium, data, len);
    if (d >= 0) throw new SenseError('MISCOMPARE', { info: d });
    await lu.backstore.write(lba * bs, [data.subarray(len, 2 * len)]);
    if ((byte1 & 0x08) !== 0 && lu.backstore.writeBack) await lu.backstore.flush();
  } finally {
    lu.rangeLock.release(held);
  }
  return { dataOutLength: 2 * len };
}

/** ORWRITE(16) with the default (non-XDWRITE) mode: medium := medium OR data, atomically. */
async function orWrite16(c: CommandContext): Promise<CommandResult> {
  const lu = c.lu;
  const byte1 = c.cdb[1];
  if (byte1 >> 5 !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7));
  checkWritable(c);
  const lba = readU64(c.cdb, 2);
  const n = c.cdb.readUInt32BE(10);
  if (n > lu.limits.maxTransferBlocks) throw new SenseError('INVALID_CDB_FIELD', cdbField(10));
  lu.checkRange(lba, n);
  if (n === 0) return { dataOutLength: 0 };
  const bs = lu.blockSize;
  const len = n * bs;
  const data = dataOutBuffer(c.cmd, len);
  const pending = lu.rangeLock.acquire(lba, lba + n, true);
  const held = pending instanceof Promise ? await pending : pending;
  try {
    const medium = await lu.backstore.read(lba * bs, len);
    for (let i = 0; i < len; i++) medium[i] |= data[i];
    await lu.backstore.write(lba * bs, [medium]);
    if ((byte1 & 0x08) !== 0 && lu.backstore.writeBack) await lu.backstore.flush();
  } finally {
    lu.rangeLock.release(held);
  }
  return { dataOutLength: len };
}

const w = { reservation: ReservationClass.WRITE, alua: AluaClass.ACTIVE, timeout: [30, 60] as const };

export const compareAndWriteEntries: OpcodeEntry[] = [
  { ...w, opcode: 0x89, name: 'COMPARE AND WRITE', cdbLength: 16, usage: usage('89 fa ff ff ff ff ff ff ff ff 00 00 00 ff 3f 00'), dir: DataDirection.OUT, handler: compareAndWrite },
  { ...w, opcode: 0x8b, name: 'ORWRITE(16)', cdbLength: 16, usage: usage('8b fa ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: orWrite16 },
];
