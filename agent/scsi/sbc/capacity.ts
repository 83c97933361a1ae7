// SBC-4 §5.20–5.21 READ CAPACITY 10/16 and §5.8 GET LBA STATUS.
import { readU64, trimToAllocation, writeU64 } from '../cdb.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';

function readCapacity10(c: CommandContext): CommandResult {
  const lba = c.cdb.readUInt32BE(2);
  if ((c.cdb[8] & 1) === 0 && lba !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(2));
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.min(c.lu.lastLba, 0xffffffff), 0);
  b.writeUInt32BE(c.lu.blockSize, 4);
  return { data: b };
}

/** LBPME: the LU supports logical block provisioning management (UNMAP or WRITE SAME with UNMAP). */
export function lbpme(c: CommandContext): boolean {
  return c.lu.limits.unmap || c.lu.limits.writeSameUnmap;
}

function readCapacity16(c: CommandContext): CommandResult {
  const alloc = c.cdb.readUInt32BE(10);
  const b = Buffer.alloc(32);
  writeU64(b, 0, c.lu.lastLba);
  b.writeUInt32BE(c.lu.blockSize, 8);
  // byte 13: logical blocks per physical block exponent; byte 14: LBPME, LBPRZ (unmapped blocks read as zeros).
  b[13] = c.lu.physicalBlockExponent & 0x0f;
  if (lbpme(c)) b[14] = 0x80 | 0x40;
  return { data: trimToAllocation(b, alloc) };
}

/** GET LBA STATUS: the contract gives no allocation map, so the whole range is reported as mapped. */
function getLbaStatus(c: CommandContext): CommandResult {
  const lba = readU64(c.cdb, 2);
  const alloc = c.cdb.readUInt32BE(10);
  if (lba > c.lu.lastLba) throw new SenseError('LBA_OUT_OF_RANGE');
  const b = Buffer.alloc(24);
  b.writeUInt32BE(20, 0);
  writeU64(b, 8, lba);
  b.writeUInt32BE(Math.min(c.lu.blocks - lba, 0xffffffff), 16);
  b[20] = 0; // mapped (or unknown)
  return { data: trimToAllocation(b, alloc) };
}

const meta = { reservation: ReservationClass.READ, alua: AluaClass.ACTIVE } as const;

export const capacityEntries: OpcodeEntry[] = [
  { ...meta, opcode: 0x25, name: 'READ CAPACITY(10)', cdbLength: 10, usage: usage('25 00 ff ff ff ff 00 00 01 00'), dir: DataDirection.IN, handler: readCapacity10 },
  { ...meta, opcode: 0x9e, sa: 0x10, name: 'READ CAPACITY(16)', cdbLength: 16, usage: usage('9e 1f ff ff ff ff ff ff ff ff ff ff ff ff 01 00'), dir: DataDirection.IN, handler: readCapacity16 },
  { ...meta, opcode: 0x9e, sa: 0x12, name: 'GET LBA STATUS', cdbLength: 16, usage: usage('9e 1f ff ff ff ff ff ff ff ff ff ff ff ff 03 00'), dir: DataDirection.IN, handler: getLbaStatus },
];
