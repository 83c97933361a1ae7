// SBC-4 §5.11–5.14, §5.35–5.46: READ/WRITE 6/10/12/16, WRITE AND VERIFY 10/12/16, WRITE ATOMIC(16).
import { dataOutLength, dataOutViews, readU64 } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';
import { ScsiStatus } from '../port.js';

const NO_DATA: CommandResult = Object.freeze({});

const asData = (data: Buffer): CommandResult => ({ status: ScsiStatus.GOOD, data });

/**
 * Shared tail of every READ: protection, limits, range, then one backstore read. Not async (the core
 * awaits handlers inside its try, so sense errors may be thrown): one promise per READ fewer.
 */
function doRead(lu: LogicalUnit, lba: number, n: number, protect: number): Promise<CommandResult> | CommandResult {
  if (protect !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7));
  if (n > lu.limits.maxTransferBlocks) throw new SenseError('INVALID_CDB_FIELD', cdbField(0));
  lu.checkRange(lba, n);
  if (n === 0) return NO_DATA;
  return lu.backstore.read(lba * lu.blockSize, n << lu.blockShift).then(asData);
}

/** Checks shared by every medium-modifying command (SBC-4 §4.11 write protection). */
export function checkWritable(ctx: CommandContext): void {
  if (ctx.mapping?.writeProtect || ctx.lu.readOnly) throw new SenseError('WRITE_PROTECTED');
}

/** Shared tail of every WRITE: writes Data-Out views at the LBA under the range lock, FUA → flush. */
export async function doWrite(ctx: CommandContext, lba: number, n: number, byte1: number, exclusive = false): Promise<CommandResult> {
  const lu = ctx.lu;
  if (byte1 >> 5 !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7));
  checkWritable(ctx);
  if (n > lu.limits.maxTransferBlocks) throw new SenseError('INVALID_CDB_FIELD', cdbField(0));
  lu.checkRange(lba, n);
  if (n === 0) return { dataOutLength: 0 };
  const len = n << lu.blockShift;
  // Expected Data Transfer Length shorter than the CDB: write the whole blocks that arrived (the
  // fabric reports the overflow residual from dataOutLength), as libiscsi's residual tests expect.
  const got = ctx.cmd.dataOut.length === 1 ? ctx.cmd.dataOut[0].length : dataOutLength(ctx.cmd);
  if (got < len) {
    const whole = Math.floor(got / lu.blockSize);
    if (whole === 0) return { dataOutLength: len };
    n = whole;
  }
  const wlen = n << lu.blockShift;
  const views = dataOutViews(ctx.cmd, wlen);
  const pending = lu.rangeLock.acquire(lba, lba + n, exclusive);
  const held = pending instanceof Promise ? await pending : pending;
  try {
    await lu.backstore.write(lba * lu.blockSize, views);
    if ((byte1 & 0x08) !== 0 && lu.backstore.writeBack) await lu.backstore.flush();
  } finally {
    lu.rangeLock.release(held);
  }
  return { dataOutLength: len };
}

const read6 = (c: CommandContext) => doRead(c.lu, ((c.cdb[1] & 0x1f) << 16) | c.cdb.readUInt16BE(2), c.cdb[4] || 256, 0);
const read10 = (c: CommandContext) => doRead(c.lu, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7), c.cdb[1] >> 5);
const read12 = (c: CommandContext) => doRead(c.lu, c.cdb.readUInt32BE(2), c.cdb.readUInt32BE(6), c.cdb[1] >> 5);
const read16 = (c: CommandContext) => doRead(c.lu, readU64(c.cdb, 2), c.cdb.readUInt32BE(10), c.cdb[1] >> 5);

const write6 = (c: CommandContext) => doWrite(c, ((c.cdb[1] & 0x1f) << 16) | c.cdb.readUInt16BE(2), c.cdb[4] || 256, 0);
const write10 = (c: CommandContext) => doWrite(c, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7), c.cdb[1]);
const write12 = (c: CommandContext) => doWrite(c, c.cdb.readUInt32BE(2), c.cdb.readUInt32BE(6), c.cdb[1]);
const write16 = (c: CommandContext) => doWrite(c, readU64(c.cdb, 2), c.cdb.readUInt32BE(10), c.cdb[1]);

/** WRITE AND VERIFY: the data written is the data compared, so BYTCHK=1 always matches; the write is made durable. */
async function writeVerify(c: CommandContext, lba: number, n: number): Promise<CommandResult> {
  const bytchk = (c.cdb[1] >> 1) & 3;
  if (bytchk > 1) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 2));
  const r = await doWrite(c, lba, n, c.cdb[1] & 0xe0);
  if (n > 0 && c.lu.backstore.writeBack) await c.lu.backstore.flush();
  return r;
}
const writeVerify10 = (c: CommandContext) => writeVerify(c, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7));
const writeVerify12 = (c: CommandContext) => writeVerify(c, c.cdb.readUInt32BE(2), c.cdb.readUInt32BE(6));
const writeVerify16 = (c: CommandContext) => writeVerify(c, readU64(c.cdb, 2), c.cdb.readUInt32BE(10));

/** WRITE ATOMIC(16): all or nothing with respect to other commands — the exclusive range lock gives that. */
async function writeAtomic16(c: CommandContext): Promise<CommandResult> {
  if (c.cdb.readUInt16BE(10) !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(10)); // no atomic boundary support
  return doWrite(c, readU64(c.cdb, 2), c.cdb.readUInt16BE(12), c.cdb[1], true);
}

/** Transfer lengths of the write CDBs, for soliciting only what the command transfers. */
const blocks6 = (cdb: Buffer) => cdb[4] || 256;
const blocks10 = (cdb: Buffer) => cdb.readUInt16BE(7);
const blocks12 = (cdb: Buffer) => cdb.readUInt32BE(6);
const blocks16 = (cdb: Buffer) => cdb.readUInt32BE(10);

const T_IO: [number, number] = [30, 60];
const base = { reservation: ReservationClass.READ, alua: AluaClass.ACTIVE, timeout: T_IO } as const;
const wbase = { reservation: ReservationClass.WRITE, alua: AluaClass.ACTIVE, timeout: T_IO } as const;

export const readWriteEntries: OpcodeEntry[] = [
  { ...base, opcode: 0x08, name: 'READ(6)', cdbLength: 6, usage: usage('08 1f ff ff ff 00'), dir: DataDirection.IN, handler: read6 },
  { ...base, opcode: 0x28, name: 'READ(10)', cdbLength: 10, usage: usage('28 fe ff ff ff ff 3f ff ff 00'), dir: DataDirection.IN, handler: read10 },
  { ...base, opcode: 0xa8, name: 'READ(12)', cdbLength: 12, usage: usage('a8 fe ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.IN, handler: read12 },
  { ...base, opcode: 0x88, name: 'READ(16)', cdbLength: 16, usage: usage('88 fe ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.IN, handler: read16 },
  { ...wbase, opcode: 0x0a, name: 'WRITE(6)', dataOutBlocks: blocks6, cdbLength: 6, usage: usage('0a 1f ff ff ff 00'), dir: DataDirection.OUT, handler: write6 },
  { ...wbase, opcode: 0x2a, name: 'WRITE(10)', dataOutBlocks: blocks10, cdbLength: 10, usage: usage('2a fa ff ff ff ff 3f ff ff 00'), dir: DataDirection.OUT, handler: write10 },
  { ...wbase, opcode: 0xaa, name: 'WRITE(12)', dataOutBlocks: blocks12, cdbLength: 12, usage: usage('aa fa ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: write12 },
  { ...wbase, opcode: 0x8a, name: 'WRITE(16)', dataOutBlocks: blocks16, cdbLength: 16, usage: usage('8a fa ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: write16 },
  { ...wbase, opcode: 0x2e, name: 'WRITE AND VERIFY(10)', dataOutBlocks: blocks10, cdbLength: 10, usage: usage('2e f6 ff ff ff ff 3f ff ff 00'), dir: DataDirection.OUT, handler: writeVerify10 },
  { ...wbase, opcode: 0xae, name: 'WRITE AND VERIFY(12)', dataOutBlocks: blocks12, cdbLength: 12, usage: usage('ae f6 ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: writeVerify12 },
  { ...wbase, opcode: 0x8e, name: 'WRITE AND VERIFY(16)', dataOutBlocks: blocks16, cdbLength: 16, usage: usage('8e f6 ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: writeVerify16 },
  { ...wbase, opcode: 0x9c, name: 'WRITE ATOMIC(16)', dataOutBlocks: (cdb) => cdb.readUInt16BE(12), cdbLength: 16, usage: usage('9c f8 ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: writeAtomic16 },
];
