// docs/bucket-format.md §Local cache: the cache's byte budget — slots, eviction of clean chunks, bounded
// write backpressure, and the entries that hold chunk files.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BackstoreError, BackstoreErrorCode } from '../backstores/backstore.js';
import { toBackstoreError } from '../backstores/file-store.js';
import { WriteBatcher } from '../backstores/write-batcher.js';
import { fastIo } from '../native/fast-io.js';
import type { Logger } from '../lib/log.js';
import { SECTOR, type SectorBitmap } from './bitmap.js';
import { forgetHandle, newEntry, type Entry } from './entry.js';
import type { Flusher } from './flusher.js';
import type { ChunkRemote } from './remote.js';

export interface CacheOptions {
  dir: string;
  size: number;
  chunkSize: number;
  /** Bytes of local disk the cached chunk files may use. */
  capacity: number;
  writeBack: boolean;
  remote: ChunkRemote;
  /** Bound on a read that needs the bucket (ms). */
  readTimeoutMs: number;
  uploadConcurrency: number;
  retryBaseMs: number;
  retryMaxMs: number;
  commitIntervalMs: number;
  /** A dirty chunk is uploaded once unwritten for this long (or sooner under cache pressure or at close). */
  uploadDelayMs: number;
  /** Longest a small write waits to share a log segment before one is cut anyway (flusher.ts has the default). */
  segmentAgeMs?: number;
  /** Chunks fetched ahead of a sequential reader. */
  readAhead: number;
  /** Longest a write waits for cache space (dirty data filling the cache) before a retryable NOT READY. */
  writeTimeoutMs?: number;
  /** Called with each chunk an initiator's read touches (the heat map of agent/sites/heat-map.ts). */
  onRead?: (index: number) => void;
  log: Logger;
}

export abstract class CacheSpace {
  readonly entries = new Map<number, Entry>();
  readonly slots: number;
  readonly chunksDir: string;
  readonly zeroChunk: Buffer;
  abstract readonly flusher: Flusher;
  protected unsynced = new Set<Entry>();
  protected dirChanged = false;
  /** Bytes of chunk data the cache files hold (valid sectors), bytes promised to writes in progress, bytes being unlinked. */
  protected held = 0;
  protected reserved = 0;
  protected unlinking = 0;
  protected slotWaiters: Array<() => void> = [];
  protected fileSeq = 0;
  closed = false;

  /** Writes to chunk files go out in pwritev batches on a thread of the cache's own (undefined: the threadpool). */
  readonly batcher: WriteBatcher | undefined;

  protected constructor(readonly o: CacheOptions) {
    // Slots are a byte budget counted in chunk units: a chunk holding a few written sectors costs only those.
    this.slots = Math.max(2, Math.floor(o.capacity / o.chunkSize));
    // OUTPOST_CACHE_WRITE_BATCH=0: one threadpool job per chunk-file write (to measure the difference).
    const io = process.env.OUTPOST_CACHE_WRITE_BATCH === '0' ? undefined : fastIo(o.log);
    this.batcher = io ? new WriteBatcher(io, (err) => toBackstoreError(err, `object cache ${o.dir}: write`), () => {}) : undefined;
    this.chunksDir = join(o.dir, 'chunks');
    this.zeroChunk = Buffer.alloc(o.chunkSize);
  }

  protected evictable(e: Entry): boolean {
    return !e.dirty && !e.stagedEpoch && !e.journaled && !e.uploading && e.users === 0 && !e.lock.locked && !e.removed;
  }

  get waitingForSlots(): number {
    return this.slotWaiters.length;
  }

  notifySlots(): void {
    const w = this.slotWaiters;
    this.slotWaiters = [];
    for (const r of w) r();
  }

  /** Bytes of chunk data entry `e` holds in its file. */
  bytesOf(e: Entry): number {
    return e.valid ? e.valid.count * SECTOR : this.o.chunkSize;
  }

  /** Runs `fn`, which may change e.valid, keeping the byte count of the cache in step. */
  protected async accounted<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const before = this.bytesOf(e);
    try {
      return await fn();
    } finally {
      if (!e.removed) this.held += this.bytesOf(e) - before;
    }
  }

  /** Bytes held by cached chunks (stats, flusher pressure). */
  get heldBytes(): number {
    return this.held;
  }

  /** Reserves `bytes` of the budget (released by the caller once the bytes are held). */
  protected async reserveSlot(wait: boolean, bytes = this.o.chunkSize): Promise<boolean> {
    // Bounded backpressure: below common initiator command timeouts (30 s), so the initiator sees a
    // retryable sense instead of timing out and resetting the session.
    const bound = this.o.writeTimeoutMs ?? 20_000;
    const deadline = Date.now() + bound;
    for (;;) {
      if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
      if (this.held + this.reserved + this.unlinking + bytes <= this.slots * this.o.chunkSize || (this.reserved === 0 && this.held === 0 && this.unlinking === 0)) {
        this.reserved += bytes;
        return true;
      }
      const victim = [...this.entries.values()].find((e) => this.evictable(e));
      if (victim) { await this.removeEntry(victim); continue; }
      if (!wait) return false;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BackstoreError(BackstoreErrorCode.NOT_READY, `cache full of data not yet uploaded for ${bound} ms (${this.flusher.lastError ?? 'uploads in progress'})`);
      }
      this.flusher.kick();
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((r) => {
        this.slotWaiters.push(r);
        timer = setTimeout(() => { this.slotWaiters = this.slotWaiters.filter((w) => w !== r); r(); }, left);
      });
      clearTimeout(timer);
    }
  }

  protected async removeEntry(e: Entry): Promise<void> {
    if (this.entries.get(e.index) === e) this.entries.delete(e.index);
    const bytes = e.removed ? 0 : this.bytesOf(e);
    e.removed = true;
    this.unsynced.delete(e);
    this.held -= bytes;
    this.unlinking += bytes;
    try {
      await forgetHandle(e.path);
      await unlink(e.path).catch(() => undefined);
    } finally {
      this.unlinking -= bytes;
      this.notifySlots();
    }
  }

  /** Drops an entry from the map without unlinking yet (unmap); its bytes leave the budget now. */
  protected detach(e: Entry): void {
    this.entries.delete(e.index);
    this.held -= this.bytesOf(e);
    e.removed = true;
    this.unsynced.delete(e);
  }

  /** Creates an entry for `index`; `valid` null means the file will hold the whole chunk. */
  protected createEntry(index: number, valid: SectorBitmap | null, init: (e: Entry) => Promise<void>): Entry {
    const e = newEntry(index, this.chunksDir, `${index}-${this.fileSeq++}`);
    e.valid = valid;
    this.entries.set(index, e);
    this.held += this.bytesOf(e);
    this.dirChanged = true;
    e.ready = init(e);
    e.ready.catch(() => { void this.removeEntry(e); });
    return e;
  }

  protected touch(e: Entry): void {
    if (this.entries.get(e.index) !== e) return;
    this.entries.delete(e.index);
    this.entries.set(e.index, e);
  }
}
