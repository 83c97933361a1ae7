// docs/bucket-format.md §Local cache: a disk cache of whole chunks bounded by cache_size, clean and dirty,
// with LRU eviction of clean chunks, write backpressure, bucket fetches for misses and read-ahead. The byte
// budget is in space.ts, the read path in read-path.ts; this file holds recovery, the write path and the journal.
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BackstoreError, BackstoreErrorCode } from '../backstores/backstore.js';
import { SECTOR, SectorBitmap } from './bitmap.js';
import { forgetHandlesUnder, newEntry, readInto, writeAt, writeAtOpen, type Entry } from './entry.js';
import { Flusher } from './flusher.js';
import { settleAll } from '../lib/settle.js';
import { Journal, readJournal, type JournalRound, type JournalState } from './journal.js';
import { CacheReads } from './read-path.js';
import type { CacheOptions } from './space.js';

export type { CacheOptions } from './space.js';

export class ChunkCache extends CacheReads {
  readonly flusher: Flusher;
  readonly journal: Journal;
  /** Chunks unmapped since the last manifest → stage epoch. */
  readonly trimmed = new Map<number, number>();
  /** Set for the final journal round of close(). */
  private keepWarm = false;
  /** Writes taken by the fast path (writeCached). */
  fastWrites = 0;

  private constructor(o: CacheOptions) {
    super(o);
    this.journal = new Journal(o.dir, (full) => this.journalRound(full));
    this.flusher = new Flusher(this, o);
  }

  /** Opens the cache directory, recovering dirty chunks named by the journal (they are uploaded again). */
  static async open(o: CacheOptions): Promise<ChunkCache> {
    const c = new ChunkCache(o);
    await mkdir(c.chunksDir, { recursive: true });
    const j = await readJournal(o.dir);
    if (j && j.chunk_size !== o.chunkSize) throw new Error(`cache ${o.dir} was written with chunk size ${j.chunk_size}`);
    const files = new Set(await readdir(c.chunksDir));
    for (const f of files) c.fileSeq = Math.max(c.fileSeq, Number(f.split('-')[1] ?? 0) + 1);
    const keep = new Set<string>();
    for (const i of j?.trimmed ?? []) c.trimmed.set(i, o.remote.unmap(i));
    for (const d of j?.dirty ?? []) {
      const f = (d as { f?: string }).f;
      if (!f || !files.has(f)) { o.log.error({ chunk: d.i }, 'cache recovery: journaled chunk file missing'); continue; }
      const e = newEntry(d.i, c.chunksDir, f);
      e.valid = d.v === null ? null : SectorBitmap.fromBase64(o.chunkSize / SECTOR, d.v);
      // What was written since the last manifest is not recorded: every valid sector is uploaded again.
      e.written = e.valid ? SectorBitmap.fromBase64(o.chunkSize / SECTOR, d.v!) : SectorBitmap.full(o.chunkSize / SECTOR);
      e.writtenSince = Date.now();
      c.held += c.bytesOf(e);
      e.dirty = true;
      e.dirtySince = Date.now();
      e.journaled = true;
      e.journaledValid = d.v;
      c.entries.set(d.i, e);
      keep.add(f);
    }
    // Clean copies recorded by a clean close stay if the manifest still names the object they copy.
    let warm = 0;
    for (const k of j?.clean ?? []) {
      if (c.entries.size >= c.slots || c.entries.has(k.i) || !files.has(k.f) || keep.has(k.f) || o.remote.identity(k.i) !== k.id) continue;
      c.entries.set(k.i, newEntry(k.i, c.chunksDir, k.f));
      keep.add(k.f);
      warm++;
    }
    if (warm) o.log.info({ chunks: warm }, 'cache: kept clean chunks from the last clean close');
    // Anything else is a clean copy or an unflushed write: not trusted after a crash.
    for (const f of files) if (!keep.has(f)) await unlink(join(c.chunksDir, f)).catch(() => undefined);
    if (c.entries.size || c.trimmed.size) o.log.info({ dirty: c.entries.size, trimmed: c.trimmed.size }, 'cache recovery: re-uploading dirty chunks');
    c.flusher.kick();
    return c;
  }

  // ---- write path ----

  /** An entry for writing `index`, pinned (users++); waits for room when the cache is full of dirty data. */
  private async entryForWrite(index: number, whole: boolean): Promise<Entry> {
    for (;;) {
      let e = this.entries.get(index);
      if (!e) {
        const need = whole ? this.o.chunkSize : 0;
        await this.reserveSlot(true, need);
        this.reserved -= need;
        e = this.entries.get(index);
        if (e) this.notifySlots();
        else {
          // A fresh sparse file: only what is written (or fetched) is valid and counts against the cache.
          e = this.createEntry(index, whole ? null : new SectorBitmap(this.o.chunkSize / SECTOR),
            async (x) => { await (await open(x.path, 'w')).close(); });
        }
      }
      e.users++;
      try {
        await this.whenReady(e);
      } catch (err) {
        e.users--;
        throw err;
      }
      if (!e.removed) return e;
      e.users--;
    }
  }

  write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    return this.writeCached(offset, chunks, length) ?? this.writePieces(offset, chunks, length);
  }

  /** A write piece by piece (each chunk it touches), waiting for entries, room and edge sectors as needed. */
  async writePieces(offset: number, chunks: readonly Buffer[], length: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    let ci = 0;
    let co = 0;
    for (const [index, off, len] of this.pieces(offset, length)) {
      const bufs: Buffer[] = [];
      for (let need = len; need > 0;) {
        const c = chunks[ci]!;
        const take = Math.min(need, c.length - co);
        bufs.push(c.subarray(co, co + take));
        need -= take;
        co += take;
        if (co === c.length) { ci++; co = 0; }
      }
      jobs.push(this.writePiece(index, off, len, bufs));
    }
    // Every piece settles before the write does, failed or not: the caller may reuse the buffers then.
    await settleAll(jobs);
    if (!this.o.writeBack) await this.flush();
  }

  private async writePiece(index: number, off: number, len: number, bufs: Buffer[]): Promise<void> {
    const e = await this.entryForWrite(index, off === 0 && len === this.o.chunkSize);
    let reserved = 0;
    try {
      if (e.valid && !e.valid.coversBytes(off, off + len)) {
        // New sectors join the cache: room for them first (this is where a full cache applies backpressure).
        reserved = len + 2 * SECTOR;
        e.users--;
        try { await this.reserveSlot(true, reserved); } finally { e.users++; }
        if (e.removed) { this.reserved -= reserved; reserved = 0; e.users--; return this.writePiece(index, off, len, bufs); }
      }
      const v = e.valid;
      if (v && (off % SECTOR || (off + len) % SECTOR) && !(v.coversBytes(off, off + 1) && v.coversBytes(off + len - 1, off + len))) {
        // Unaligned edge over a sector we do not hold: fetch just those sectors (read-modify-write of a sector).
        await this.fill(e, off, off + len, true); // the reservation above covers the edge sectors
      }
      // Shared: writes to one chunk run side by side (at QD32 over a few dozen chunks, one in five found its
      // chunk locked by another write and waited a whole batch); capture, fill and unmap hold it alone.
      await e.lock.runShared(async () => {
        this.writing(e);
        await writeAt(e.path, bufs, off, this.batcher);
        this.wrote(e, off, len);
      });
    } finally {
      if (reserved) { this.reserved -= reserved; this.notifySlots(); }
      e.users--;
    }
    this.flusher.wrote();
  }

  /**
   * The fast path of a write (issue 17): inside one chunk that is cached, ready and holds every sector the
   * write touches, with nothing exclusive holding or waiting for the chunk — writePiece's steps without its
   * awaits, one promise (the batcher's) per write. undefined when it does not apply (nothing done): write().
   */
  writeCached(offset: number, chunks: readonly Buffer[], length: number): Promise<void> | undefined {
    const batcher = this.batcher;
    const held = batcher && this.o.writeBack && !this.closed && this.heldRange(offset, length);
    if (!held) return undefined;
    const { e, off } = held;
    if (!e.lock.tryShared()) return undefined;
    const p = writeAtOpen(e.path, chunks, length, off, batcher);
    if (!p) { e.lock.releaseShared(); return undefined; }
    e.users++;
    this.fastWrites++;
    this.writing(e);
    return p.then(() => {
      this.wrote(e, off, length);
      this.release(e);
      this.flusher.wrote();
    }, (err: unknown) => {
      this.release(e);
      throw err;
    });
  }

  private release(e: Entry): void {
    e.users--;
    e.lock.releaseShared();
  }

  /** Before a write's bytes go to the chunk file. */
  private writing(e: Entry): void {
    if (!e.dirty) { e.dirty = true; if (!e.dirtySince) e.dirtySince = Date.now(); }
    e.seq++;
    e.lastWrite = Date.now();
  }

  /** After they are in it: the maps and the byte count, in one turn (concurrent writes of a chunk would count each other's sectors twice). */
  private wrote(e: Entry, off: number, len: number): void {
    const before = this.bytesOf(e);
    if (e.valid) { e.valid.markBytes(off, off + len); if (e.valid.full) e.valid = null; }
    if (!e.removed) this.held += this.bytesOf(e) - before;
    if (!e.written) { e.written = new SectorBitmap(this.o.chunkSize / SECTOR); e.writtenSince = Date.now(); }
    e.written.markTouching(off, off + len);
    // An upload staged while writeAt ran saw nothing written yet and may have marked the chunk clean.
    e.dirty = true;
    this.unsynced.add(e);
    this.touch(e);
  }

  /** Durable locally: fdatasync written chunk files, then the journal naming them. */
  async flush(): Promise<void> {
    try {
      await this.journal.sync();
    } catch (e) {
      throw new BackstoreError(BackstoreErrorCode.IO, 'cache flush failed', { cause: e });
    }
  }

  async unmap(offset: number, length: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    const dropped: Entry[] = [];
    for (const [index, off, len] of this.pieces(offset, length)) {
      if (len < this.o.chunkSize) { jobs.push(this.writePiece(index, off, len, [this.zeroChunk.subarray(0, len)])); continue; }
      const e = this.entries.get(index);
      if (e) jobs.push(e.lock.run(async () => { if (!e.removed) { this.detach(e); dropped.push(e); } }));
      if (e || this.o.remote.hasData(index)) this.trimmed.set(index, this.o.remote.unmap(index));
    }
    await Promise.all(jobs);
    await this.flush(); // the journal now names the trims and no longer the dropped files
    for (const e of dropped) await this.removeEntry(e);
    this.flusher.kick();
  }

  /** Whether chunk `index` holds data: a cached copy (clean or dirty) or an object named by the staged manifest. */
  allocated(index: number): boolean {
    const e = this.entries.get(index);
    return (e !== undefined && !e.removed) || this.o.remote.hasData(index);
  }

  /** Called by the flusher after a manifest covering `epoch` is written. */
  committed(epoch: number): void {
    for (const e of this.entries.values()) {
      if (e.stagedEpoch && e.stagedEpoch <= epoch) e.stagedEpoch = 0;
      if (!e.dirty && !e.stagedEpoch) e.dirtySince = 0;
    }
    for (const [i, ep] of this.trimmed) if (ep <= epoch) this.trimmed.delete(i);
  }

  private journalRound(full: boolean): JournalRound {
    // A trim round (not full) names only what a round named before or what was synced since, each with the valid
    // map that is on disk: a chunk dirtied since the last flush joins at the next one (until then its writes are
    // unflushed, as in any write-back cache), and no sector is named valid before its data was synced.
    const included = [...this.entries.values()].filter((e) => (e.dirty || e.stagedEpoch) && (full || e.journaled || !this.unsynced.has(e)));
    const valid = included.map((e) => (!full && e.journaled && this.unsynced.has(e) ? e.journaledValid : e.valid ? e.valid.toBase64() : null));
    // The final round of a clean close also names whole clean copies of committed objects (warm restart).
    const clean = !full || !this.keepWarm ? [] : [...this.entries.values()].filter((e) => !e.dirty && !e.stagedEpoch && !e.removed && e.valid === null
      && !e.uploading && this.o.remote.identity(e.index) !== undefined);
    const state: JournalState = {
      version: 1 as const, chunk_size: this.o.chunkSize,
      dirty: included.map((e, k) => ({ i: e.index, f: e.file, v: valid[k]! })),
      trimmed: [...this.trimmed.keys()],
      ...(clean.length ? { clean: clean.map((e) => ({ i: e.index, f: e.file, id: this.o.remote.identity(e.index)! })) } : {}),
    };
    const named = (): void => {
      const inc = new Map(included.map((e, k) => [e, valid[k]!]));
      for (const e of this.entries.values()) {
        e.journaled = inc.has(e);
        e.journaledValid = inc.get(e) ?? null;
      }
      this.notifySlots();
    };
    if (!full) return { state, dirs: [], files: [], done: (ok) => { if (ok) named(); } };
    // Clean files were written without fsync; the journal must not name a copy a power cut could tear.
    for (const e of clean) this.unsynced.add(e);
    const syncing = this.unsynced;
    this.unsynced = new Set();
    const dirs = this.dirChanged ? [this.chunksDir] : [];
    this.dirChanged = false;
    return {
      state, dirs, files: [...syncing].filter((e) => !e.removed).map((e) => e.path),
      done: (ok) => {
        if (ok) named();
        else {
          for (const e of syncing) if (!e.removed) this.unsynced.add(e);
          if (dirs.length) this.dirChanged = true;
        }
      },
    };
  }

  /** Bytes written since the last upload captured them. */
  writtenBytes(e: Entry): number {
    return e.written ? e.written.count * SECTOR : 0;
  }

  /**
   * Captures what the next upload of `e` sends and clears its written map (writes from now on are the next
   * upload's): the whole chunk when `whole` (the entry must hold every sector), else the written runs.
   * null when the chunk was unmapped meanwhile. `restore` gives the sectors back if the upload is abandoned;
   * `seq` is the entry's mutation count when captured (a later write may not have marked `written` yet).
   */
  async capture(e: Entry, whole: boolean): Promise<{ data: Buffer | null; runs: Array<[number, Buffer]>; seq: number; restore(): void } | null> {
    return e.lock.run(async () => {
      if (e.removed) return null;
      const seq = e.seq;
      const taken = e.written;
      e.written = null;
      const since = e.writtenSince;
      const restore = (): void => {
        if (!taken || e.removed) return;
        if (!e.written) { e.written = new SectorBitmap(this.o.chunkSize / SECTOR); e.writtenSince = since; }
        e.written.or(taken);
      };
      if (whole) {
        const data = Buffer.allocUnsafe(this.o.chunkSize);
        await readInto(e.path, data, 0);
        return { data, runs: [], seq, restore };
      }
      const runs: Array<[number, Buffer]> = [];
      for (const [s, t] of taken?.runs() ?? []) {
        const b = Buffer.allocUnsafe(t - s);
        await readInto(e.path, b, s);
        runs.push([s, b]);
      }
      return { data: null, runs, seq, restore };
    });
  }

  /** What the journal names that the bucket does not hold yet (what a close leaves for the next start). */
  pending(): { chunks: number; bytes: number; trimmed: number } {
    let chunks = 0;
    for (const e of this.entries.values()) if (e.dirty || e.stagedEpoch) chunks++;
    return { chunks, bytes: chunks * this.o.chunkSize, trimmed: this.trimmed.size };
  }

  stats(): Record<string, number | string | null> {
    let dirty = 0;
    let oldest = 0;
    for (const e of this.entries.values()) {
      if (e.dirty) dirty += Math.max(SECTOR, this.writtenBytes(e) + e.capturedBytes);
      if (e.dirtySince && (!oldest || e.dirtySince < oldest)) oldest = e.dirtySince;
    }
    const lookups = this.hits + this.misses;
    return {
      cache_size: this.slots * this.o.chunkSize,
      cached_bytes: this.held,
      dirty_bytes: dirty,
      oldest_dirty_age_ms: oldest ? Date.now() - oldest : 0,
      hit_ratio: lookups ? this.hits / lookups : 1,
      fast_reads: this.fastReads,
      fast_writes: this.fastWrites,
      uploads_in_flight: this.flusher.inFlight,
      last_error: this.flusher.lastError ?? this.lastError,
      ...this.batcher?.stats(),
    };
  }

  /** Stops accepting I/O, makes everything durable locally, uploads and commits (bounded by `timeoutMs`). */
  async close(timeoutMs: number): Promise<boolean> {
    this.closed = true;
    this.notifySlots();
    await this.flush();
    const drained = await this.flusher.drain(timeoutMs);
    this.flusher.stop();
    this.keepWarm = true;
    await this.flush();
    this.batcher?.close(); // every write has settled: the writer thread ends
    await forgetHandlesUnder(this.chunksDir);
    return drained;
  }
}
