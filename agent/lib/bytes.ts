// Byte helpers for the iSCSI receiver: a push-driven queue of received chunks that hands out views,
// copying only when a requested range spans chunks (the ws receiver's approach).
import type { SlabRef } from './recv-slabs.js';

export class ChunkQueue {
  private chunks: Buffer[] = [];
  /** The slab reference each chunk came with (recv-slabs.ts), dropped once the chunk is consumed. */
  private owners: Array<SlabRef | undefined> = [];
  private head = 0; // offset into chunks[0]
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer, owner?: SlabRef): void {
    if (chunk.length === 0) { owner?.unref(); return; }
    this.chunks.push(chunk);
    this.owners.push(owner);
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

  /**
   * n bytes as a list of views into the received chunks; never copies. With `held`, a reference on each
   * slab the views lie in is taken and added to it (the caller drops them when done with the bytes).
   */
  consumeViews(n: number, held?: SlabRef[]): Buffer[] {
    if (n > this.total) throw new RangeError(`consumeViews(${n}) with ${this.total} buffered`);
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      const take = Math.min(left, c.length - this.head);
      const owner = held && this.owners[0];
      if (owner && held[held.length - 1] !== owner) { owner.ref(); held.push(owner); }
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
    for (const o of this.owners) o?.unref();
    this.owners = [];
    this.chunks = [];
    this.head = 0;
    this.total = 0;
  }

  private advance(n: number): void {
    this.head += n;
    this.total -= n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.owners.shift()?.unref();
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
