// SPC-4 §4.3 CDB field helpers and data-buffer helpers shared by the command sets.
import type { ScsiCommand } from './port.js';
import { SenseError, cdbField } from './sense.js';

/** 64-bit big-endian LBA as a JS number; LBAs beyond 2^53 are out of range for any LU anyway. */
export function readU64(b: Buffer, off: number): number {
  const hi = b.readUInt32BE(off);
  const lo = b.readUInt32BE(off + 4);
  return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
}

export function writeU64(b: Buffer, off: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000) >>> 0, off);
  b.writeUInt32BE(v >>> 0, off + 4);
}

/** Trims response data to the allocation length (SPC-4 §4.2.5.6: truncation is not an error). */
export function trimToAllocation(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}

/**
 * Views of the first `length` bytes of the command's Data-Out, without copying.
 * Fewer bytes than the CDB asks for (Expected Data Transfer Length too small) is refused, as LIO does.
 */
export function dataOutViews(cmd: ScsiCommand, length: number): Buffer[] {
  if (length === 0) return [];
  const chunks = cmd.dataOut;
  if (chunks.length === 1 && chunks[0].length >= length) return [chunks[0].length === length ? chunks[0] : chunks[0].subarray(0, length)];
  const out: Buffer[] = [];
  let need = length;
  for (const c of chunks) {
    if (need === 0) break;
    if (c.length <= need) {
      out.push(c);
      need -= c.length;
    } else {
      out.push(c.subarray(0, need));
      need = 0;
    }
  }
  if (need > 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(0));
  return out;
}

/** The first `length` bytes of Data-Out as one buffer (a copy only when they span chunks). */
export function dataOutBuffer(cmd: ScsiCommand, length: number): Buffer {
  const v = dataOutViews(cmd, length);
  if (v.length === 1) return v[0];
  return v.length === 0 ? Buffer.alloc(0) : Buffer.concat(v, length);
}

/** Bytes of Data-Out actually delivered (parameter lists shorter than the CDB says). */
export function dataOutLength(cmd: ScsiCommand): number {
  let n = 0;
  for (const c of cmd.dataOut) n += c.length;
  return n;
}

/** Space-padded ASCII into a fixed field (INQUIRY vendor/product/revision). */
export function putAscii(b: Buffer, off: number, len: number, s: string): void {
  b.fill(0x20, off, off + len);
  b.write(s.slice(0, len), off, 'ascii');
}
