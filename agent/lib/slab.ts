// Data-path buffers for backstore reads: small ones carved out of shared slabs, large ones from a
// bounded free list that the iSCSI connection refills once the socket has sent them.
//
// Buffer.allocUnsafe(4096) creates a fresh ArrayBuffer (Node pools only sizes below 4 KiB), and every
// large ArrayBuffer counts as external memory, which drives V8 into extra mark-compact collections
// at hundreds of MiB/s. A slab hands out consecutive 8-byte-aligned views of one allocation and is
// reclaimed by the GC once every view is gone (no release, so nothing queued on a socket is reused).
// Large requests are rounded up to a power-of-two class; releaseData() returns such a buffer for reuse
// and must only be called when no reference to it remains in use (after the socket write callback).

/** Bytes per slab. */
const SLAB_SIZE = 256 * 1024;
/** Largest request served from a slab. */
const SLAB_MAX = 16 * 1024;
/** Largest request served from the pool; above it every read gets its own buffer. */
const POOL_MAX = 1 << 20;
/** Bytes kept on the free lists (all classes together). */
const POOL_KEEP = 32 << 20;

let slab: Buffer = Buffer.allocUnsafe(0);
let used = 0;

/** Pool-owned allocations (by their ArrayBuffer), whether lent out or free. */
const owned = new WeakSet<ArrayBufferLike>();
const free = new Map<number, Buffer[]>();
let freeBytes = 0;

function classOf(length: number): number {
  let c = SLAB_MAX * 2;
  while (c < length) c *= 2;
  return c;
}

/** An uninitialised buffer of `length` bytes (contents are garbage: fill every byte). */
export function allocData(length: number): Buffer {
  if (length <= SLAB_MAX) {
    if (used + length > slab.length) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      used = 0;
    }
    const view = slab.subarray(used, used + length);
    used += (length + 7) & ~7;
    return view;
  }
  if (length > POOL_MAX) return Buffer.allocUnsafeSlow(length);
  const size = classOf(length);
  const list = free.get(size);
  let buf = list?.pop();
  if (buf) freeBytes -= size;
  else {
    buf = Buffer.allocUnsafeSlow(size);
    owned.add(buf.buffer);
  }
  return buf.subarray(0, length);
}

/** true when `b` came from allocData's pool (and so may be handed back with releaseData). */
export function isPooled(b: Buffer): boolean {
  return owned.has(b.buffer);
}

/**
 * Hands a pooled buffer (or any view of one) back for reuse. The caller guarantees nothing reads or
 * writes it any more. Anything not from the pool is ignored.
 */
export function releaseData(b: Buffer): void {
  const ab = b.buffer;
  if (!owned.has(ab)) return;
  const size = ab.byteLength;
  if (freeBytes + size > POOL_KEEP) return; // let the GC have it
  let list = free.get(size);
  if (!list) free.set(size, (list = []));
  const whole = Buffer.from(ab, 0, size);
  if (list.some((x) => x.buffer === ab)) return; // already free: never hand one buffer out twice
  list.push(whole);
  freeBytes += size;
}
