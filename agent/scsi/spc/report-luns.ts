// SPC-4 §6.33 REPORT LUNS (from the nexus's live LUN view) and SAM-5 §4.7 LUN encoding.
import { trimToAllocation } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import type { ScsiCommand } from '../port.js';
import { SenseError, cdbField } from '../sense.js';

/** Single-level LUN: peripheral addressing below 256, flat space addressing up to 16383. */
export function encodeLun(lun: number, out: Buffer, off: number): void {
  if (lun < 256) {
    out[off] = 0;
    out[off + 1] = lun;
  } else {
    out[off] = 0x40 | ((lun >> 8) & 0x3f);
    out[off + 1] = lun & 0xff;
  }
}

function reportLuns(cmd: ScsiCommand): CommandResult {
  const select = cmd.cdb[2];
  const alloc = cmd.cdb.readUInt32BE(6);
  if (alloc < 16) throw new SenseError('INVALID_CDB_FIELD', cdbField(6));
  if (select > 2) throw new SenseError('INVALID_CDB_FIELD', cdbField(2));
  // select 1 asks for well-known LUNs only; there are none.
  const luns = select === 1 ? [] : cmd.luns.list().map((m) => m.lun).sort((a, b) => a - b);
  const b = Buffer.alloc(8 + luns.length * 8);
  b.writeUInt32BE(luns.length * 8, 0);
  luns.forEach((lun, i) => encodeLun(lun, b, 8 + i * 8));
  for (const m of cmd.luns.list()) (m.lu as LogicalUnit).ua.clear(cmd.nexus.id, 'REPORTED_LUNS_DATA_CHANGED');
  return { data: trimToAllocation(b, alloc) };
}

export const reportLunsEntry: OpcodeEntry = {
  opcode: 0xa0,
  name: 'REPORT LUNS',
  cdbLength: 12,
  usage: usage('a0 00 ff 00 00 00 ff ff ff ff 00 00'),
  dir: DataDirection.IN,
  reservation: ReservationClass.ALLOWED,
  alua: AluaClass.ANY,
  skipUa: true,
  noLun: reportLuns,
  handler: (c: CommandContext) => reportLuns(c.cmd),
};
