// SBC-4 §5.16–5.17 READ DEFECT DATA 10/12: a virtual medium has no defects; the lists are empty.
import { trimToAllocation } from '../cdb.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';

/** Echoes the requested list types as valid (PLISTV/GLISTV) and format, with zero defects. */
function readDefectData(c: CommandContext, twelve: boolean): CommandResult {
  const req = twelve ? c.cdb[1] : c.cdb[2];
  const alloc = twelve ? c.cdb.readUInt32BE(6) : c.cdb.readUInt16BE(7);
  const b = Buffer.alloc(twelve ? 8 : 4);
  b[1] = req & 0x1f; // PLISTV, GLISTV, DEFECT LIST FORMAT
  return { data: trimToAllocation(b, alloc) };
}

const meta = { dir: DataDirection.IN, reservation: ReservationClass.READ, alua: AluaClass.ACTIVE } as const;

export const defectEntries: OpcodeEntry[] = [
  { ...meta, opcode: 0x37, name: 'READ DEFECT DATA(10)', cdbLength: 10, usage: usage('37 00 1f 00 00 00 00 ff ff 00'), handler: (c) => readDefectData(c, false) },
  { ...meta, opcode: 0xb7, name: 'READ DEFECT DATA(12)', cdbLength: 12, usage: usage('b7 1f 00 00 00 00 ff ff ff ff 00 00'), handler: (c) => readDefectData(c, true) },
];
