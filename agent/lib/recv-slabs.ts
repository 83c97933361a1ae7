// Receive buffers for iSCSI connections (issue 15): socket reads land in reused slabs instead of a fresh
// ArrayBuffer per read.
//
// Why: Node allocates a new 64 KiB backing store for every socket read (and reallocates it to the bytes
// read). At hundreds of MiB/s of Data-Out that is hundreds of MiB/s of external memory, and V8 answers
// external memory growth with full mark-compacts: 27 a second and a third of the agent's CPU in the
// 128 KiB write row. Reading into slabs that come back once nothing refers to them keeps the external
// memory flat.
//
// Lifetime: a slab counts its references — the reader while it reads into it, each received chunk while
// the receiver's queue holds it, and each PDU payload a consumer has taken a hold on. It returns to the
// pool only when the count reaches zero after the reader has moved on. A payload nobody releases simply
// keeps its slab out of the pool (the garbage collector frees it as before): forgetting a release costs
// speed, never data. Releasing while the bytes are still in use would be the bug, so only consumers that
// know when they are done with the bytes release (full-feature.ts: WRITE data once the backstore write
// has settled).

/** A reference on a slab, dropped with unref() (ChunkQueue, PDU payload holds). */
export interface SlabRef {
  ref(): void;
  unref(): void;
}

/** Bytes per slab: several 64 KiB reads, or thousands of small command PDUs. */
export const SLAB_BYTES = 256 * 1024;
/** A read is given at least this much room (a new slab when less is left). */
const MIN_READ = 64 * 1024;
/** Free slabs kept for reuse, all connections together (4 MiB). */
const MAX_FREE = 16;

export class RecvSlabPool {
  private readonly free: Buffer[] = [];
  allocated = 0;
  reused = 0;

  take(): Buffer {
    const b = this.free.pop();
    if (b) { this.reused++; return b; }
    this.allocated++;
    return Buffer.allocUnsafeSlow(SLAB_BYTES);
  }

  give(b: Buffer): void {
    if (this.free.length < MAX_FREE) this.free.push(b);
  }

  get freeSlabs(): number {
    return this.free.length;
  }
}

/** The pool every connection of this process shares. */
export const recvSlabs = new RecvSlabPool();

class Slab implements SlabRef {
  refs = 1; // the reader's, until it moves on
  constructor(readonly buf: Buffer, private readonly pool: RecvSlabPool) {}

  ref(): void {
    this.refs++;
  }

  unref(): void {
    if (--this.refs === 0) this.pool.give(this.buf);
  }
}

/** One connection's reads: where the next read goes, and the slab each received chunk lies in. */
export class SlabReader {
  private slab: Slab | undefined;
  private pos = 0;

  constructor(private readonly pool: RecvSlabPool = recvSlabs) {}

  /** The buffer the next socket read fills. */
  next(): Buffer {
    if (!this.slab || SLAB_BYTES - this.pos < MIN_READ) {
      this.slab?.unref();
      this.slab = new Slab(this.pool.take(), this.pool);
      this.pos = 0;
    }
    return this.slab.buf.subarray(this.pos);
  }

  /** `n` bytes were read into the buffer next() gave: the chunk, with a reference its holder drops. */
  received(n: number): { chunk: Buffer; owner: SlabRef } {
    const s = this.slab!;
    const chunk = s.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    s.ref();
    return { chunk, owner: s };
  }

  /** The connection is gone: the current slab returns once its chunks and holds are dropped. */
  close(): void {
    this.slab?.unref();
    this.slab = undefined;
  }
}

/**
 * Makes `socket` read into slabs: `onChunk` gets each read's bytes with their slab reference, and the
 * socket's 'data' events stop. This is net.Socket's own `onread` mode (a buffer generator and a callback),
 * which Node offers for sockets it creates but not for ones a server accepts; it is set up here the way
 * net.Socket's constructor does it. Returns undefined — the caller keeps 'data' events — when `socket` is
 * not a net.Socket with a stream handle of this Node's shape (a tunnel's Duplex, another Node version).
 */
export function readIntoSlabs(socket: unknown, onChunk: (chunk: Buffer, owner: SlabRef) => void, pool: RecvSlabPool = recvSlabs): SlabReader | undefined {
  const s = socket as Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Buffer) => void; reading?: boolean } };
  const handle = s._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return undefined;
  const sym = (name: string) => Object.getOwnPropertySymbols(s).find((x) => x.description === name);
  const kBuffer = sym('kBuffer');
  const kBufferCb = sym('kBufferCb');
  const kBufferGen = sym('kBufferGen');
  if (!kBuffer || !kBufferCb || !kBufferGen || s[kBuffer] !== null) return undefined;
  const reader = new SlabReader(pool);
  s[kBufferCb] = (n: number) => {
    const { chunk, owner } = reader.received(n);
    onChunk(chunk, owner);
    return true;
  };
  s[kBufferGen] = () => reader.next();
  const first = reader.next();
  s[kBuffer] = first;
  handle.useUserBuffer(first);
  return reader;
}
