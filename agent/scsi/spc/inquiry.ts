// SPC-4 §6.6 INQUIRY: standard data (§6.6.2) and dispatch to the VPD pages (§7.8).
import { putAscii, trimToAllocation } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import type { ScsiCommand } from '../port.js';
import { SenseError, cdbField } from '../sense.js';
import { vpdPage } from './vpd.js';

const STANDARD_LENGTH = 74;
/** Version descriptors (SPC-4 table 144): SAM-5, iSCSI, SPC-4, SBC-3. */
const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0];

function standardInquiry(lu: LogicalUnit | undefined): Buffer {
  const b = Buffer.alloc(STANDARD_LENGTH);
  if (!lu) {
    b[0] = 0x7f; // peripheral qualifier 3, device type 1Fh: no logical unit here
  } else {
    b[0] = 0x00; // connected, direct-access block device
  }
  b[2] = 0x06; // SPC-4
  b[3] = 0x12; // HISUP, response data format 2
  b[4] = STANDARD_LENGTH - 5;
  if (lu) {
    b[5] = (lu.alua.tpgs() << 4) | (lu.limits.threePc ? 0x08 : 0);
  }
  b[7] = 0x02; // CMDQUE
  putAscii(b, 8, 8, lu?.vendor ?? 'OUTPOST');
  putAscii(b, 16, 16, lu?.product ?? 'NO LUN');
  putAscii(b, 32, 4, lu?.revision ?? '0001');
  VERSION_DESCRIPTORS.forEach((v, i) => b.writeUInt16BE(v, 58 + i * 2));
  return b;
}

function inquiry(c: CommandContext): CommandResult {
  const alloc = c.cdb.readUInt16BE(3);
  if ((c.cdb[1] & 1) === 0) {
    if (c.cdb[2] !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(2));
    return { data: trimToAllocation(standardInquiry(c.lu), alloc) };
  }
  return { data: trimToAllocation(vpdPage(c, c.cdb[2]), alloc) };
}

function inquiryNoLun(cmd: ScsiCommand): CommandResult {
  const alloc = cmd.cdb.readUInt16BE(3);
  if ((cmd.cdb[1] & 1) !== 0 || cmd.cdb[2] !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(2));
  return { data: trimToAllocation(standardInquiry(undefined), alloc) };
}

export const inquiryEntry: OpcodeEntry = {
  opcode: 0x12,
  name: 'INQUIRY',
  cdbLength: 6,
  usage: usage('12 01 ff ff ff 00'),
  dir: DataDirection.IN,
  reservation: ReservationClass.ALLOWED,
  alua: AluaClass.ANY,
  skipUa: true,
  noLun: inquiryNoLun,
  handler: inquiry,
};
