// SBC-4 §5.29–5.31 VERIFY 10/12/16, §5.9–5.10 PRE-FETCH 10/16, §5.25–5.26 SYNCHRONIZE CACHE 10/16.
import { dataOutBuffer, readU64 } from '../cdb.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { ScsiStatus } from '../port.js';
import { SenseError, cdbField } from '../sense.js';

/** Index of the first differing byte, or -1. */
export function firstDifference(a: Buffer, b: Buffer, length: number): number {
  if (a.compare(b, 0, length, 0, length) === 0) return -1;
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function verify(c: CommandContext, lba: number, n: number): Promise<CommandResult> {
  const lu = c.lu;
  if (c.cdb[1] >> 5 !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7)); // VRPROTECT without PI
  const bytchk = (c.cdb[1] >> 1) & 3;
  if (bytchk === 2) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 2));
  lu.checkRange(lba, n);
  if (n === 0) return {};
  if (bytchk === 0) return {}; // medium verification: the backing store has no per-block check to run
  if (n > lu.limits.maxTransferBlocks) throw new SenseError('INVALID_CDB_FIELD', cdbField(0));
  const bs = lu.blockSize;
  const outLen = bytchk === 1 ? n * bs : bs;
  const expected = dataOutBuffer(c.cmd, outLen);
  const medium = await lu.backstore.read(lba * bs, n * bs);
  for (let i = 0; i < n; i++) {
    const got = medium.subarray(i * bs, (i + 1) * bs);
    const want = bytchk === 1 ? expected.subarray(i * bs, (i + 1) * bs) : expected;
    const d = firstDifference(got, want, bs);
    if (d >= 0) throw new SenseError('MISCOMPARE', { info: i * bs + d });
  }
  return { dataOutLength: outLen };
}

const verify10 = (c: CommandContext) => verify(c, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7));
const verify12 = (c: CommandContext) => verify(c, c.cdb.readUInt32BE(2), c.cdb.readUInt32BE(6));
const verify16 = (c: CommandContext) => verify(c, readU64(c.cdb, 2), c.cdb.readUInt32BE(10));

/** PRE-FETCH: nothing to stage (the OS page cache does it); CONDITION MET says the range would fit. */
function prefetch(c: CommandContext, lba: number, n: number): CommandResult {
  c.lu.checkRange(lba, n);
  return { status: ScsiStatus.CONDITION_MET };
}
const prefetch10 = (c: CommandContext) => prefetch(c, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7));
const prefetch16 = (c: CommandContext) => prefetch(c, readU64(c.cdb, 2), c.cdb.readUInt32BE(10));

async function sync(c: CommandContext, lba: number, n: number): Promise<CommandResult> {
  c.lu.checkRange(lba, n);
  await c.lu.backstore.flush();
  return {};
}
const sync10 = (c: CommandContext) => sync(c, c.cdb.readUInt32BE(2), c.cdb.readUInt16BE(7));
const sync16 = (c: CommandContext) => sync(c, readU64(c.cdb, 2), c.cdb.readUInt32BE(10));

const rd = { reservation: ReservationClass.READ, alua: AluaClass.ACTIVE, timeout: [30, 60] as const };

export const verifyEntries: OpcodeEntry[] = [
  { ...rd, opcode: 0x2f, name: 'VERIFY(10)', cdbLength: 10, usage: usage('2f f6 ff ff ff ff 3f ff ff 00'), dir: DataDirection.OUT, handler: verify10 },
  { ...rd, opcode: 0xaf, name: 'VERIFY(12)', cdbLength: 12, usage: usage('af f6 ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: verify12 },
  { ...rd, opcode: 0x8f, name: 'VERIFY(16)', cdbLength: 16, usage: usage('8f f6 ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.OUT, handler: verify16 },
  { ...rd, opcode: 0x34, name: 'PRE-FETCH(10)', cdbLength: 10, usage: usage('34 02 ff ff ff ff 3f ff ff 00'), dir: DataDirection.NONE, handler: prefetch10 },
  { ...rd, opcode: 0x90, name: 'PRE-FETCH(16)', cdbLength: 16, usage: usage('90 02 ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.NONE, handler: prefetch16 },
  { ...rd, reservation: ReservationClass.WRITE, opcode: 0x35, name: 'SYNCHRONIZE CACHE(10)', cdbLength: 10, usage: usage('35 06 ff ff ff ff 3f ff ff 00'), dir: DataDirection.NONE, handler: sync10 },
  { ...rd, reservation: ReservationClass.WRITE, opcode: 0x91, name: 'SYNCHRONIZE CACHE(16)', cdbLength: 16, usage: usage('91 06 ff ff ff ff ff ff ff ff ff ff ff ff 3f 00'), dir: DataDirection.NONE, handler: sync16 },
];
