// SPC-4 §6.11–6.14 MODE SENSE/SELECT 6/10, §7.5 mode pages (caching 08h, control 0Ah, informational exceptions 1Ch).
import { dataOutBuffer, dataOutLength, trimToAllocation, writeU64 } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField, paramField } from '../sense.js';

const PageControl = { CURRENT: 0, CHANGEABLE: 1, DEFAULT: 2, SAVED: 3 } as const;
type PageControl = (typeof PageControl)[keyof typeof PageControl];

const PAGE_ORDER = [0x08, 0x0a, 0x1c] as const;

function cachingPage(lu: LogicalUnit, pc: PageControl): Buffer {
  const b = Buffer.alloc(20);
  b[0] = 0x08;
  b[1] = 0x12;
  if (pc !== PageControl.CHANGEABLE && lu.backstore.writeBack) b[2] = 0x04; // WCE
  return b;
}

function controlPage(lu: LogicalUnit, pc: PageControl): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x0a;
  b[1] = 0x0a;
  if (pc === PageControl.CHANGEABLE) return b;
  // TST=000 (one task set), QErr=00, D_SENSE=0 (fixed-format sense), TAS from emulate_tas.
  if (lu.mode.dSense) b[2] |= 0x04;
  b[3] = 0x10; // QUEUE ALGORITHM MODIFIER=1: unrestricted reordering of SIMPLE tasks
  if (lu.limits.tas) b[5] |= 0x40;
  b.writeUInt16BE(0xffff, 8); // busy timeout: unlimited
  return b;
}

function informationalExceptionsPage(_lu: LogicalUnit, pc: PageControl): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x1c;
  b[1] = 0x0a;
  if (pc !== PageControl.CHANGEABLE) b[2] = 0x08; // DEXCPT: no informational exception reporting
  return b;
}

function buildPage(lu: LogicalUnit, code: number, pc: PageControl): Buffer | undefined {
  switch (code) {
    case 0x08:
      return cachingPage(lu, pc);
    case 0x0a:
      return controlPage(lu, pc);
    case 0x1c:
      return informationalExceptionsPage(lu, pc);
    default:
      return undefined;
  }
}

function selectPages(lu: LogicalUnit, code: number, sub: number, pc: PageControl): Buffer[] {
  if (code === 0x3f) {
    if (sub !== 0x00 && sub !== 0xff) throw new SenseError('INVALID_CDB_FIELD', cdbField(3));
    return PAGE_ORDER.map((p) => buildPage(lu, p, pc)!);
  }
  const page = buildPage(lu, code, pc);
  if (!page) throw new SenseError('INVALID_CDB_FIELD', cdbField(2, 5));
  if (sub !== 0x00 && sub !== 0xff) throw new SenseError('INVALID_CDB_FIELD', cdbField(3));
  return [page];
}

function modeSense(c: CommandContext, ten: boolean): CommandResult {
  const cdb = c.cdb;
  const lu = c.lu;
  const dbd = (cdb[1] & 0x08) !== 0;
  const llbaa = ten && (cdb[1] & 0x10) !== 0;
  const pc = (cdb[2] >> 6) as PageControl;
  if (pc === PageControl.SAVED) throw new SenseError('SAVING_PARAMETERS_NOT_SUPPORTED');
  const pages = selectPages(lu, cdb[2] & 0x3f, cdb[3], pc);
  const alloc = ten ? cdb.readUInt16BE(7) : cdb[4];
  const headerLen = ten ? 8 : 4;
  const bdLen = dbd ? 0 : llbaa ? 16 : 8;
  let pagesLen = 0;
  for (const p of pages) pagesLen += p.length;
  const b = Buffer.alloc(headerLen + bdLen + pagesLen);
  const deviceSpecific = (c.mapping?.writeProtect || lu.readOnly ? 0x80 : 0) | 0x10; // WP, DPOFUA
  if (ten) {
    b.writeUInt16BE(b.length - 2, 0);
    b[3] = deviceSpecific;
    if (llbaa && !dbd) b[4] = 0x01; // LONGLBA
    b.writeUInt16BE(bdLen, 6);
  } else {
    b[0] = Math.min(b.length - 1, 0xff);
    b[2] = deviceSpecific;
    b[3] = bdLen;
  }
  let off = headerLen;
  if (bdLen === 8) {
    b.writeUInt32BE(Math.min(lu.blocks, 0xffffffff), off);
    b.writeUIntBE(lu.blockSize, off + 5, 3);
  } else if (bdLen === 16) {
    writeU64(b, off, lu.blocks);
    b.writeUInt32BE(lu.blockSize, off + 12);
  }
  off += bdLen;
  for (const p of pages) {
    p.copy(b, off);
    off += p.length;
  }
  return { data: trimToAllocation(b, alloc) };
}

/** MODE SELECT: parameters are validated against the changeable mask; nothing outside it may differ. */
function modeSelect(c: CommandContext, ten: boolean): CommandResult {
  const cdb = c.cdb;
  const lu = c.lu;
  if (cdb[1] & 0x01) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 0)); // SP: no saved pages
  const listLen = ten ? cdb.readUInt16BE(7) : cdb[4];
  if (listLen === 0) return { dataOutLength: 0 };
  const headerLen = ten ? 8 : 4;
  const avail = Math.min(listLen, dataOutLength(c.cmd));
  if (avail < headerLen) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const p = dataOutBuffer(c.cmd, avail);
  const bdLen = ten ? p.readUInt16BE(6) : p[3];
  let off = headerLen;
  if (off + bdLen > avail) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  if (bdLen === 8) {
    const blockLen = p.readUIntBE(off + 5, 3);
    if (blockLen !== 0 && blockLen !== lu.blockSize) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 5));
  } else if (bdLen !== 0 && bdLen !== 16) {
    throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(ten ? 6 : 3));
  }
  off += bdLen;
  while (off < avail) {
    if (off + 2 > avail) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
    const code = p[off] & 0x3f;
    if (p[off] & 0x40) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off, 6)); // no subpages
    const current = buildPage(lu, code, PageControl.CURRENT);
    const changeable = buildPage(lu, code, PageControl.CHANGEABLE);
    if (!current || !changeable) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off));
    const len = p[off + 1] + 2;
    if (len !== current.length) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 1));
    if (off + len > avail) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
    for (let i = 2; i < len; i++) {
      const bad = (p[off + i] ^ current[i]) & ~changeable[i];
      if (bad) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + i, 31 - Math.clz32(bad)));
    }
    off += len;
  }
  return { dataOutLength: avail };
}

const m = { alua: AluaClass.STANDBY } as const;

export const modeEntries: OpcodeEntry[] = [
  { ...m, opcode: 0x1a, name: 'MODE SENSE(6)', cdbLength: 6, usage: usage('1a 08 ff ff ff 00'), dir: DataDirection.IN, reservation: ReservationClass.ALLOWED, handler: (c) => modeSense(c, false) },
  { ...m, opcode: 0x5a, name: 'MODE SENSE(10)', cdbLength: 10, usage: usage('5a 18 ff ff 00 00 00 ff ff 00'), dir: DataDirection.IN, reservation: ReservationClass.ALLOWED, handler: (c) => modeSense(c, true) },
  { ...m, opcode: 0x15, name: 'MODE SELECT(6)', cdbLength: 6, usage: usage('15 11 00 00 ff 00'), dir: DataDirection.OUT, reservation: ReservationClass.EXCLUSIVE, handler: (c) => modeSelect(c, false) },
  { ...m, opcode: 0x55, name: 'MODE SELECT(10)', cdbLength: 10, usage: usage('55 11 00 00 00 00 00 ff ff 00'), dir: DataDirection.OUT, reservation: ReservationClass.EXCLUSIVE, handler: (c) => modeSelect(c, true) },
];
