// SBC-4 §5.20–5.21 READ CAPACITY 10/16 and §5.8 GET LBA STATUS (provisioning from Backstore.allocation).
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

/** Most bytes one GET LBA STATUS examines; the initiator asks again from where the last descriptor ends. */
const LBA_STATUS_SPAN = 16 * 2 ** 30;
const MAX_DESCRIPTORS = 1024;
const ProvisioningStatus = { MAPPED: 0, DEALLOCATED: 1 } as const;

/**
 * [start, end) runs of mapped (true) / deallocated (false) LBAs from the backstore's byte map. A block that is
 * partly mapped counts as mapped; without allocation() everything is mapped.
 */
async function lbaRuns(c: CommandContext, lba: number, count: number): Promise<Array<[number, number, boolean]>> {
  const bs = c.lu.blockSize;
  const ranges = c.lu.backstore.allocation ? await c.lu.backstore.allocation(lba * bs, count * bs) : [{ offset: lba * bs, length: count * bs, mapped: true }];
  const runs: Array<[number, number, boolean]> = [];
  let at = lba;
  for (const r of ranges) {
    if (!r.mapped || r.length === 0) continue;
    const s = Math.max(at, Math.floor(r.offset / bs));
    const e = Math.min(lba + count, Math.ceil((r.offset + r.length) / bs));
    if (e <= s) continue;
    if (s > at) runs.push([at, s, false]);
    const last = runs[runs.length - 1];
    if (last && last[2] && last[1] === s) last[1] = e;
    else runs.push([s, e, true]);
    at = e;
  }
  if (at < lba + count) runs.push([at, lba + count, false]);
  return runs;
}

/** SBC-4 §5.8 GET LBA STATUS: descriptors from the starting LBA, mapped or deallocated (LBPRZ: reads as zeros). */
async function getLbaStatus(c: CommandContext): Promise<CommandResult> {
  const lba = readU64(c.cdb, 2);
  const alloc = c.cdb.readUInt32BE(10);
  const reportType = c.cdb[14] & 0x07; // 0 all, 1 non-zero status, 2 mapped, 3 deallocated
  if (reportType > 3) throw new SenseError('INVALID_CDB_FIELD', cdbField(14, 2));
  if (lba > c.lu.lastLba) throw new SenseError('LBA_OUT_OF_RANGE');
  const count = Math.min(c.lu.blocks - lba, Math.max(1, Math.floor(LBA_STATUS_SPAN / c.lu.blockSize)));
  const descs: Array<[number, number, number]> = [];
  for (const [s, e, mapped] of await lbaRuns(c, lba, count)) {
    const status = mapped ? ProvisioningStatus.MAPPED : ProvisioningStatus.DEALLOCATED;
    if ((reportType === 1 || reportType === 3) && mapped) continue;
    if (reportType === 2 && !mapped) continue;
    for (let x = s; x < e && descs.length < MAX_DESCRIPTORS; x += 0xffffffff) descs.push([x, Math.min(e - x, 0xffffffff), status]);
  }
  const b = Buffer.alloc(8 + 16 * descs.length);
  b.writeUInt32BE(b.length - 4, 0);
  descs.forEach(([x, n, status], i) => {
    writeU64(b, 8 + 16 * i, x);
    b.writeUInt32BE(n, 16 + 16 * i);
    b[20 + 16 * i] = status;
  });
  return { data: trimToAllocation(b, alloc) };
}

const meta = { reservation: ReservationClass.READ, alua: AluaClass.ACTIVE } as const;

export const capacityEntries: OpcodeEntry[] = [
  { ...meta, opcode: 0x25, name: 'READ CAPACITY(10)', cdbLength: 10, usage: usage('25 00 ff ff ff ff 00 00 01 00'), dir: DataDirection.IN, handler: readCapacity10 },
  { ...meta, opcode: 0x9e, sa: 0x10, name: 'READ CAPACITY(16)', cdbLength: 16, usage: usage('9e 1f ff ff ff ff ff ff ff ff ff ff ff ff 01 00'), dir: DataDirection.IN, handler: readCapacity16 },
  { ...meta, opcode: 0x9e, sa: 0x12, name: 'GET LBA STATUS', cdbLength: 16, usage: usage('9e 1f ff ff ff ff ff ff ff ff ff ff ff ff 03 00'), dir: DataDirection.IN, handler: getLbaStatus },
];
