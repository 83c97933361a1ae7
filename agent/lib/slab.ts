// Data-path buffers: small read buffers carved out of shared slabs instead of one ArrayBuffer each.
//
// Buffer.allocUnsafe(4096) creates a fresh ArrayBuffer (Node pools only sizes below 4 KiB), which at
// tens of thousands of reads per second shows up as allocation and GC time. A slab hands out
// consecutive 8-byte-aligned views of one larger allocation; the slab is reclaimed by the GC once
// every view of it is gone, so no explicit release (and no reuse of a buffer still queued on a socket)
// is needed. Large requests get their own buffer: a long-lived small view must not pin a big slab.

/** Bytes per slab. */
const SLAB_SIZE = 256 * 1024;
/** Largest request served from a slab. */
const SLAB_MAX = 16 * 1024;

let slab: Buffer = Buffer.allocUnsafe(0);
let used = 0;

/** An uninitialised buffer of `length` bytes (contents are garbage: fill every byte). */
export function allocData(length: number): Buffer {
  if (length > SLAB_MAX) return Buffer.allocUnsafeSlow(length);
  if (used + length > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    used = 0;
  }
  const view = slab.subarray(used, used + length);
  used += (length + 7) & ~7;
  return view;
}
