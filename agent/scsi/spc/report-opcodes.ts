// SPC-4 §6.35 REPORT SUPPORTED OPERATION CODES and §6.36 REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
import { trimToAllocation } from '../cdb.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';

const TIMEOUT_DESCRIPTOR_LENGTH = 12;

function timeoutDescriptor(e: OpcodeEntry, out: Buffer, off: number): void {
  out.writeUInt16BE(0x0a, off);
  const [nominal, recommended] = e.timeout ?? [0, 0];
  out.writeUInt32BE(nominal, off + 4);
  out.writeUInt32BE(recommended, off + 8);
}

function allCommands(c: CommandContext, rctd: boolean): Buffer {
  const entries = c.table.entries();
  const per = 8 + (rctd ? TIMEOUT_DESCRIPTOR_LENGTH : 0);
  const b = Buffer.alloc(4 + entries.length * per);
  b.writeUInt32BE(entries.length * per, 0);
  let off = 4;
  for (const e of entries) {
    b[off] = e.opcode;
    if (e.sa !== undefined) b.writeUInt16BE(e.sa, off + 2);
    b[off + 5] = (rctd ? 0x02 : 0) | (e.sa !== undefined ? 0x01 : 0); // CTDP, SERVACTV
    b.writeUInt16BE(e.cdbLength, off + 6);
    if (rctd) timeoutDescriptor(e, b, off + 8);
    off += per;
  }
  return b;
}

function oneCommand(e: OpcodeEntry | undefined, rctd: boolean): Buffer {
  if (!e) {
    const b = Buffer.alloc(4);
    b[1] = 0x01; // SUPPORT=001: not supported
    return b;
  }
  const b = Buffer.alloc(4 + e.cdbLength + (rctd ? TIMEOUT_DESCRIPTOR_LENGTH : 0));
  b[1] = (rctd ? 0x80 : 0) | 0x03; // CTDP, SUPPORT=011: supported as in the standard
  b.writeUInt16BE(e.cdbLength, 2);
  for (let i = 0; i < e.cdbLength; i++) b[4 + i] = e.usage[i];
  if (rctd) timeoutDescriptor(e, b, 4 + e.cdbLength);
  return b;
}

function reportSupportedOpcodes(c: CommandContext): CommandResult {
  const cdb = c.cdb;
  const rctd = (cdb[2] & 0x80) !== 0;
  const options = cdb[2] & 0x07;
  const opcode = cdb[3];
  const sa = cdb.readUInt16BE(4);
  const alloc = cdb.readUInt32BE(6);
  const table = c.table;
  let data: Buffer;
  switch (options) {
    case 0:
      data = allCommands(c, rctd);
      break;
    case 1:
      if (table.hasServiceActions(opcode)) throw new SenseError('INVALID_CDB_FIELD', cdbField(3));
      data = oneCommand(table.find(opcode, undefined), rctd);
      break;
    case 2:
      if (!table.hasServiceActions(opcode)) {
        if (table.find(opcode, undefined)) throw new SenseError('INVALID_CDB_FIELD', cdbField(3));
        data = oneCommand(undefined, rctd);
      } else {
        data = oneCommand(table.find(opcode, sa), rctd);
      }
      break;
    case 3:
      data = oneCommand(table.hasServiceActions(opcode) ? table.find(opcode, sa) : table.find(opcode, undefined), rctd);
      break;
    default:
      throw new SenseError('INVALID_CDB_FIELD', cdbField(2, 2));
  }
  return { data: trimToAllocation(data, alloc) };
}

function reportSupportedTmfs(c: CommandContext): CommandResult {
  const repd = (c.cdb[2] & 0x80) !== 0;
  const alloc = c.cdb.readUInt32BE(6);
  const b = Buffer.alloc(repd ? 16 : 4);
  // ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, TARGET RESET (no CLEAR ACA, no QUERY *).
  b[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02;
  if (repd) b[3] = 0x0c;
  return { data: trimToAllocation(b, alloc) };
}

const meta = { dir: DataDirection.IN, reservation: ReservationClass.ALLOWED, alua: AluaClass.ANY } as const;

export const reportOpcodeEntries: OpcodeEntry[] = [
  { ...meta, opcode: 0xa3, sa: 0x0c, name: 'REPORT SUPPORTED OPERATION CODES', cdbLength: 12, usage: usage('a3 1f 87 ff ff ff ff ff ff ff 00 00'), handler: reportSupportedOpcodes },
  { ...meta, opcode: 0xa3, sa: 0x0d, name: 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', cdbLength: 12, usage: usage('a3 1f 80 00 00 00 ff ff ff ff 00 00'), handler: reportSupportedTmfs },
];
