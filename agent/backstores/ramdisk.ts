// LIO rd_mcp backstore: memory, allocated in chunks on first write; unwritten ranges read as zeros.
import { allocData } from '../lib/slab.js';
import { chunkAllocation } from './allocation.js';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore } from './backstore.js';

const CHUNK = 1 << 20; // 1 MiB chunks

export interface RamdiskOptions {
  readonly name: string;
  readonly size: number;
  /** nullio: reads return zeros, writes are discarded (benchmarks). */
  readonly nullio?: boolean;
}

export class Ramdisk implements Backstore {
  readonly plugin = 'rd_mcp' as const;
  readonly size: number;
  readonly writeBack = false; // memory is as durable as it gets; nothing to flush
  readonly thinProvisioned = true;
  private readonly name: string;
  private readonly nullio: boolean;
  private chunks: (Buffer | undefined)[] | undefined;

  constructor(o: RamdiskOptions) {
    if (!Number.isSafeInteger(o.size) || o.size <= 0) throw new Error(`rd_mcp ${o.name}: invalid size ${o.size}`);
    this.name = o.name;
    this.size = o.size;
    this.nullio = o.nullio ?? false;
    this.chunks = new Array(Math.ceil(o.size / CHUNK));
  }

  private live(offset: number, length: number): (Buffer | undefined)[] {
    const chunks = this.chunks;
    if (!chunks) throw new BackstoreError(BackstoreErrorCode.CLOSED, `rd_mcp ${this.name}: closed`);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new BackstoreError(BackstoreErrorCode.RANGE, `rd_mcp ${this.name}: range ${offset}+${length} outside ${this.size}`);
    }
    return chunks;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const chunks = this.live(offset, length);
    if (this.nullio) return Buffer.alloc(length);
    const out = allocData(length); // every byte is copied or zero-filled below
    for (let done = 0; done < length; ) {
      const pos = offset + done;
      const idx = Math.floor(pos / CHUNK);
      const within = pos - idx * CHUNK;
      const n = Math.min(CHUNK - within, length - done);
      const c = chunks[idx];
      if (c) c.copy(out, done, within, within + n);
      else out.fill(0, done, done + n);
      done += n;
    }
    return out;
  }

  async write(offset: number, bufs: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const b of bufs) length += b.length;
    const chunks = this.live(offset, length);
    if (this.nullio) return;
    let pos = offset;
    for (const b of bufs) {
      for (let i = 0; i < b.length; ) {
        const idx = Math.floor(pos / CHUNK);
        const within = pos - idx * CHUNK;
        const n = Math.min(CHUNK - within, b.length - i);
        let c = chunks[idx];
        if (!c) chunks[idx] = c = Buffer.alloc(Math.min(CHUNK, this.size - idx * CHUNK));
        b.copy(c, within, i, i + n);
        i += n;
        pos += n;
      }
    }
  }

  async flush(): Promise<void> {
    this.live(0, 0);
  }

  async unmap(offset: number, length: number): Promise<void> {
    const chunks = this.live(offset, length);
    for (let done = 0; done < length; ) {
      const pos = offset + done;
      const idx = Math.floor(pos / CHUNK);
      const within = pos - idx * CHUNK;
      const c = chunks[idx];
      const n = Math.min(CHUNK - within, length - done);
      if (c) {
        if (within === 0 && n === c.length) chunks[idx] = undefined; // whole chunk: free it
        else c.fill(0, within, within + n);
      }
      done += n;
    }
  }

  /** true when any byte in [offset, offset+length) lies in an allocated chunk. */
  isMapped(offset: number, length: number): boolean {
    const chunks = this.live(offset, length);
    for (let idx = Math.floor(offset / CHUNK); idx * CHUNK < offset + length; idx++) if (chunks[idx]) return true;
    return false;
  }

  /** Backstore.allocation: allocated chunks are mapped, the rest read as zeros (deallocated). */
  async allocation(offset: number, length: number): Promise<AllocationRange[]> {
    const chunks = this.live(offset, length);
    return chunkAllocation(offset, length, CHUNK, (idx) => chunks[idx] !== undefined);
  }

  async close(): Promise<void> {
    this.chunks = undefined;
  }

  stats(): Record<string, number | string | null> {
    const chunks = this.chunks ?? [];
    let allocated = 0;
    for (const c of chunks) if (c) allocated += c.length;
    return { size: this.size, allocatedBytes: allocated };
  }
}

export function openRamdisk(o: RamdiskOptions): Ramdisk {
  return new Ramdisk(o);
}
