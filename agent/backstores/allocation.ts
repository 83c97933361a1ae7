// Backstore.allocation for stores that allocate in fixed-size chunks (ramdisk, object): coalesced ranges.
import type { AllocationRange } from './backstore.js';

/** Splits [offset, offset+length) at chunk boundaries and merges neighbours with the same state. */
export function chunkAllocation(offset: number, length: number, chunkSize: number, mapped: (index: number) => boolean): AllocationRange[] {
  const out: AllocationRange[] = [];
  for (let pos = offset; pos < offset + length; ) {
    const idx = Math.floor(pos / chunkSize);
    const end = Math.min((idx + 1) * chunkSize, offset + length);
    const m = mapped(idx);
    const last = out[out.length - 1];
    if (last && last.mapped === m) last.length += end - pos;
    else out.push({ offset: pos, length: end - pos, mapped: m });
    pos = end;
  }
  return out;
}
