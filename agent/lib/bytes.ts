// Byte helpers for the iSCSI receiver: a push-driven queue of received chunks that hands out views,
// copying only when a requested range spans chunks (the ws receiver's approach).

export class ChunkQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** n bytes as one contiguous Buffer: a view when they lie in one chunk, else a copy. */
  consume(n: number): Buffer {
    if (n > this.total) throw new RangeError(`consume(${n}) with ${this.total} buffered`);
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    const avail = first.length - this.head;
    if (n <= avail) {
      const view = first.subarray(this.head, this.head + n);
      this.advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (const v of this.consumeViews(n)) {
      v.copy(out, off);
      off += v.length;
    }
    return out;
  }

  /** n bytes as a list of views into the received chunks; never copies. */
  consumeViews(n: number): Buffer[] {
    if (n > this.total) throw new RangeError(`consumeViews(${n}) with ${this.total} buffered`);
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      const take = Math.min(left, c.length - this.head);
      out.push(c.subarray(this.head, this.head + take));
      this.advance(take);
      left -= take;
    }
    return out;
  }

  /** Drops n bytes without looking at them. */
  skip(n: number): void {
    if (n > this.total) throw new RangeError(`skip(${n}) with ${this.total} buffered`);
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      const take = Math.min(left, c.length - this.head);
      this.advance(take);
      left -= take;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.total = 0;
  }

  private advance(n: number): void {
    this.head += n;
    this.total -= n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}

/** Total length of a list of views. */
export function totalLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.length;
  return n;
}

/** Joins views into one Buffer; for small control payloads (text keys), never for SCSI data. */
export function joinViews(views: readonly Buffer[]): Buffer {
  if (views.length === 1) return views[0]!;
  return Buffer.concat(views as Buffer[]);
}

/** Padding needed to bring n up to a 4-byte boundary. */
export function pad4(n: number): number {
  return (4 - (n & 3)) & 3;
}

export function readUInt24BE(b: Buffer, off: number): number {
  return (b[off]! << 16) | (b[off + 1]! << 8) | b[off + 2]!;
}

export function writeUInt24BE(b: Buffer, v: number, off: number): void {
  b[off] = (v >>> 16) & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = v & 0xff;
}
