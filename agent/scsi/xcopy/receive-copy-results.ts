// SPC-4 §6.18 RECEIVE COPY RESULTS (LID1): COPY STATUS (SA 00h) and OPERATING PARAMETERS (SA 03h).
import { trimToAllocation } from '../cdb.js';
import type { CommandContext, CommandResult } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';
import { IMPLEMENTED_DESCRIPTORS, XcopyLimits } from './params.js';
import { heldStatus } from './status.js';

export const RcrAction = { COPY_STATUS: 0x00, OPERATING_PARAMETERS: 0x03 } as const;

function operatingParameters(): Buffer {
  const b = Buffer.alloc(44 + IMPLEMENTED_DESCRIPTORS.length);
  b.writeUInt32BE(b.length - 4, 0);
  b[4] = 0x01; // SNLID: LIST ID USAGE 11b accepted
  b.writeUInt16BE(XcopyLimits.maxTargetDescriptors, 8);
  b.writeUInt16BE(XcopyLimits.maxSegmentDescriptors, 10);
  b.writeUInt32BE(XcopyLimits.maxDescriptorListLength, 12);
  b.writeUInt32BE(XcopyLimits.maxSegmentLength, 16);
  b.writeUInt32BE(XcopyLimits.maxInlineData, 20);
  b.writeUInt32BE(0, 24); // held data limit: no held data
  b.writeUInt32BE(0, 28); // no stream devices
  b.writeUInt16BE(1, 34); // total concurrent copies
  b[36] = 1; // maximum concurrent copies
  b[37] = 9; // data segment granularity: 512 bytes (log2)
  b[38] = 0;
  b[39] = 0;
  b[43] = IMPLEMENTED_DESCRIPTORS.length;
  IMPLEMENTED_DESCRIPTORS.forEach((d, i) => (b[44 + i] = d));
  return b;
}

function copyStatus(c: CommandContext): Buffer {
  const s = heldStatus(c.lu, c.nexus.id, c.cdb[2]);
  if (!s) throw new SenseError('INVALID_CDB_FIELD', cdbField(2)); // no copy with that list identifier
  const b = Buffer.alloc(12);
  b.writeUInt32BE(8, 0);
  b[4] = s.state;
  b.writeUInt16BE(Math.min(s.segmentsProcessed, 0xffff), 5);
  // Transfer count in KiB once bytes no longer fit 32 bits.
  if (s.bytes <= 0xffffffff) {
    b[7] = 0x00;
    b.writeUInt32BE(s.bytes, 8);
  } else {
    b[7] = 0x01;
    b.writeUInt32BE(Math.min(Math.floor(s.bytes / 1024), 0xffffffff), 8);
  }
  return b;
}

export function receiveCopyResults(c: CommandContext): CommandResult {
  if (!c.lu.limits.threePc) throw new SenseError('INVALID_OPCODE');
  const alloc = c.cdb.readUInt32BE(10);
  const data = (c.cdb[1] & 0x1f) === RcrAction.COPY_STATUS ? copyStatus(c) : operatingParameters();
  return { data: trimToAllocation(data, alloc) };
}
