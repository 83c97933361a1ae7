// docs/bucket-format.md §Local cache: a disk cache of whole chunks bounded by cache_size, clean and dirty,
// with LRU eviction of clean chunks, write backpressure, bucket fetches for misses and read-ahead.
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BackstoreError, BackstoreErrorCode } from '../backstores/backstore.js';
import type { Logger } from '../lib/log.js';
import { SECTOR, SectorBitmap } from './bitmap.js';
import { forgetHandle, forgetHandlesUnder, newEntry, readInto, writeAt, type Entry } from './entry.js';
import { Flusher } from './flusher.js';
import { Journal, readJournal, type JournalRound, type JournalState } from './journal.js';
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
  /** Chunks fetched ahead of a sequential reader. */
  readAhead: number;
  /** Longest a write waits for cache space (dirty data filling the cache) before a retryable NOT READY. */
  writeTimeoutMs?: number;
  /** Called with each chunk an initiator's read touches (the heat map of agent/sites/heat-map.ts). */
  onRead?: (index: number) => void;
  log: Logger;
}

export class ChunkCache {
  readonly entries = new Map<number, Entry>();
  readonly slots: number;
  readonly chunksDir: string;
  readonly flusher: Flusher;
  readonly journal: Journal;
  readonly zeroChunk: Buffer;
  /** Chunks unmapped since the last manifest → stage epoch. */
  readonly trimmed = new Map<number, number>();
  private unsynced = new Set<Entry>();
  private dirChanged = false;
  /** Bytes of chunk data the cache files hold (valid sectors), bytes promised to writes in progress, bytes being unlinked. */
  private held = 0;
  private reserved = 0;
  private unlinking = 0;
  private slotWaiters: Array<() => void> = [];
  private readonly fetches = new Map<number, Promise<{ version: number; data: Buffer }>>();
  private fileSeq = 0;
  private lastReadEnd = -1;
  /** Set for the final journal round of close(). */
  private keepWarm = false;
  closed = false;
  hits = 0;
  misses = 0;
  /** performance.now() of the last read that had to go to the bucket: background prefetch yields to those. */
  lastMissAt = 0;
  lastError: string | null = null;

  private constructor(readonly o: CacheOptions) {
    // Slots are a byte budget counted in chunk units: a chunk holding a few written sectors costs only those.
    this.slots = Math.max(2, Math.floor(o.capacity / o.chunkSize));
    this.chunksDir = join(o.dir, 'chunks');
    this.zeroChunk = Buffer.alloc(o.chunkSize);
    this.journal = new Journal(o.dir, () => this.journalRound());
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

  // ---- slots, eviction, backpressure ----

  private evictable(e: Entry): boolean {
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
  private async accounted<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
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
  private async reserveSlot(wait: boolean, bytes = this.o.chunkSize): Promise<boolean> {
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

  private async removeEntry(e: Entry): Promise<void> {
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
  private detach(e: Entry): void {
    this.entries.delete(e.index);
    this.held -= this.bytesOf(e);
    e.removed = true;
    this.unsynced.delete(e);
  }

  /** Creates an entry for `index`; `valid` null means the file will hold the whole chunk. */
  private createEntry(index: number, valid: SectorBitmap | null, init: (e: Entry) => Promise<void>): Entry {
    const e = newEntry(index, this.chunksDir, `${index}-${this.fileSeq++}`);
    e.valid = valid;
    this.entries.set(index, e);
    this.held += this.bytesOf(e);
    this.dirChanged = true;
    e.ready = init(e);
    e.ready.catch(() => { void this.removeEntry(e); });
    return e;
  }

  private touch(e: Entry): void {
    if (this.entries.get(e.index) !== e) return;
    this.entries.delete(e.index);
    this.entries.set(e.index, e);
  }

  // ---- bucket fetches ----

  private bounded<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackstoreError(BackstoreErrorCode.NOT_READY,
        `${what}: bucket did not answer within ${this.o.readTimeoutMs} ms`)), this.o.readTimeoutMs);
    });
    return Promise.race([p, bound]).catch((e: unknown) => {
      const err = e instanceof BackstoreError ? e : new BackstoreError(BackstoreErrorCode.NOT_READY, `${what}: bucket unavailable`, { cause: e });
      this.lastError = err.message;
      throw err;
    }).finally(() => clearTimeout(timer));
  }

  /** The whole chunk as the manifest maps it (concurrent callers share one fetch). */
  private fetch(index: number): Promise<{ version: number; data: Buffer }> {
    let f = this.fetches.get(index);
    if (!f) {
      const version = this.o.remote.version(index);
      f = this.o.remote.read(index, 0, this.o.chunkSize, this.o.readTimeoutMs).then((data) => ({ version, data }))
        .finally(() => this.fetches.delete(index));
      this.fetches.set(index, f);
    }
    return this.bounded(f, `chunk ${index}`);
  }

  /** Chunk bytes [off, off+len) from the bucket: one ranged GET per object touched, nothing cached. */
  private fetchRange(index: number, off: number, len: number): Promise<Buffer> {
    return this.bounded(this.o.remote.read(index, off, len, this.o.readTimeoutMs), `chunk ${index}`);
  }

  /**
   * Makes every sector of `e` touching [start, end) valid, filling the gaps from the bucket's copy (zeros when it
   * has none). Only the missing range is fetched; sectors written meanwhile keep the newer data.
   */
  async fill(e: Entry, start = 0, end = this.o.chunkSize): Promise<void> {
    if (!e.valid) return;
    const gaps = e.valid.invalidRuns(start, end);
    if (gaps.length === 0) return;
    const from = gaps[0]![0];
    const to = gaps[gaps.length - 1]![1];
    const base = this.o.remote.hasData(e.index) ? await this.fetchRange(e.index, from, to - from) : null;
    await e.lock.run(() => this.accounted(e, async () => {
      if (!e.valid || e.removed) return;
      for (const [s, t] of e.valid.invalidRuns(from, to)) {
        if (base) await writeAt(e.path, [base.subarray(s - from, t - from)], s);
        e.valid.markBytes(s, t);
      }
      if (e.valid.full) e.valid = null;
      e.seq++;
      this.unsynced.add(e);
    }));
  }

  /** Makes every sector of `e` valid (kept for callers that need the whole chunk). */
  mergeBase(e: Entry): Promise<void> {
    return this.fill(e);
  }

  private async install(index: number, data: Buffer, version: number): Promise<void> {
    if (this.closed || this.entries.has(index) || !(await this.reserveSlot(false))) return;
    this.reserved -= this.o.chunkSize;
    if (this.entries.has(index) || this.o.remote.version(index) !== version) { this.notifySlots(); return; }
    this.createEntry(index, null, async (e) => {
      const fh = await open(e.path, 'w');
      try { await fh.write(data, 0, data.length, 0); } finally { await fh.close(); }
    });
  }

  private prefetch(index: number): void {
    if (this.entries.has(index) || this.fetches.has(index) || !this.o.remote.hasData(index)) return;
    if (this.held + this.reserved + this.unlinking + this.o.chunkSize > this.slots * this.o.chunkSize && ![...this.entries.values()].some((e) => this.evictable(e))) return;
    this.fetch(index).then((r) => this.install(index, r.data, r.version)).catch(() => undefined);
  }

  /**
   * Background hydration of a whole chunk (restore prefetch): fetched and kept if there is room, without counting
   * as a hit or miss. Resolves true when the chunk is cached now because of this call.
   */
  async warm(index: number): Promise<boolean> {
    if (this.closed || this.entries.has(index) || !this.o.remote.hasData(index)) return false;
    const r = await this.fetch(index);
    await this.install(index, r.data, r.version);
    return this.entries.has(index);
  }

  /** Whether chunk `index` is in the cache (any state). */
  holds(index: number): boolean {
    return this.entries.has(index);
  }

  // ---- data path ----

  private *pieces(offset: number, length: number): Generator<[index: number, off: number, len: number, pos: number]> {
    const cs = this.o.chunkSize;
    for (let pos = 0; pos < length;) {
      const abs = offset + pos;
      const index = Math.floor(abs / cs);
      const off = abs - index * cs;
      const len = Math.min(cs - off, length - pos);
      yield [index, off, len, pos];
      pos += len;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    const jobs: Promise<void>[] = [];
    let last = -1;
    const sequential = offset === this.lastReadEnd;
    for (const [index, off, len, pos] of this.pieces(offset, length)) {
      this.o.onRead?.(index);
      jobs.push(this.readPiece(index, off, out.subarray(pos, pos + len), sequential || len === this.o.chunkSize));
      last = index;
    }
    if (sequential && this.o.readAhead > 0) {
      const n = Math.ceil(this.o.size / this.o.chunkSize);
      for (let k = 1; k <= this.o.readAhead && last + k < n; k++) this.prefetch(last + k);
    }
    this.lastReadEnd = offset + length;
    await Promise.all(jobs);
    return out;
  }

  /** A miss fetches the whole chunk (and keeps it) for sequential readers, else exactly the range asked for. */
  private async readPiece(index: number, off: number, dst: Buffer, whole: boolean): Promise<void> {
    for (;;) {
      const e = this.entries.get(index);
      if (e) {
        e.users++;
        try {
          await e.ready;
          if (e.valid && !e.valid.coversBytes(off, off + dst.length)) await this.fill(e, off, off + dst.length);
          if (e.removed) continue;
          await readInto(e.path, dst, off);
          this.hits++;
          this.touch(e);
          return;
        } catch (err) {
          if (e.removed) continue;
          throw err;
        } finally {
          e.users--;
        }
      }
      if (!this.o.remote.hasData(index)) { dst.fill(0); this.hits++; return; }
      this.misses++;
      this.lastMissAt = performance.now();
      // Keeping a whole chunk needs room for it; without room, fetching it whole for each piece would multiply GETs.
      const room = this.held + this.reserved + this.unlinking + this.o.chunkSize <= this.slots * this.o.chunkSize
        || [...this.entries.values()].some((x) => this.evictable(x));
      if ((!whole || !room) && !this.fetches.has(index)) {
        const v = this.o.remote.version(index);
        const got = await this.fetchRange(index, off, dst.length);
        if (this.entries.has(index) || this.o.remote.version(index) !== v) continue;
        got.copy(dst);
        return;
      }
      const got = await this.fetch(index);
      if (this.entries.has(index)) continue;
      got.data.copy(dst, 0, off, off + dst.length);
      void this.install(index, got.data, got.version).catch((err) => this.o.log.warn({ err, index }, 'cache install failed'));
      return;
    }
  }

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
        await e.ready;
      } catch (err) {
        e.users--;
        throw err;
      }
      if (!e.removed) return e;
      e.users--;
    }
  }

  async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
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
    await Promise.all(jobs);
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
        await this.fill(e, off, off + len);
      }
      await e.lock.run(() => this.accounted(e, async () => {
        if (!e.dirty) { e.dirty = true; if (!e.dirtySince) e.dirtySince = Date.now(); }
        e.seq++;
        e.lastWrite = Date.now();
        await writeAt(e.path, bufs, off);
        if (e.valid) { e.valid.markBytes(off, off + len); if (e.valid.full) e.valid = null; }
        if (!e.written) { e.written = new SectorBitmap(this.o.chunkSize / SECTOR); e.writtenSince = Date.now(); }
        e.written.markTouching(off, off + len);
        // An upload staged while writeAt ran saw nothing written yet and may have marked the chunk clean.
        e.dirty = true;
        this.unsynced.add(e);
      }));
      this.touch(e);
    } finally {
      if (reserved) { this.reserved -= reserved; this.notifySlots(); }
      e.users--;
    }
    this.flusher.kick();
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

  private journalRound(): JournalRound {
    const included = [...this.entries.values()].filter((e) => e.dirty || e.stagedEpoch);
    // The final round of a clean close also names whole clean copies of committed objects (warm restart).
    const clean = !this.keepWarm ? [] : [...this.entries.values()].filter((e) => !e.dirty && !e.stagedEpoch && !e.removed && e.valid === null
      && !e.uploading && this.o.remote.identity(e.index) !== undefined);
    const state: JournalState = {
      version: 1 as const, chunk_size: this.o.chunkSize,
      dirty: included.map((e) => ({ i: e.index, f: e.file, v: e.valid ? e.valid.toBase64() : null })),
      trimmed: [...this.trimmed.keys()],
      ...(clean.length ? { clean: clean.map((e) => ({ i: e.index, f: e.file, id: this.o.remote.identity(e.index)! })) } : {}),
    };
    // Clean files were written without fsync; the journal must not name a copy a power cut could tear.
    for (const e of clean) this.unsynced.add(e);
    const syncing = this.unsynced;
    this.unsynced = new Set();
    const dirs = this.dirChanged ? [this.chunksDir] : [];
    this.dirChanged = false;
    return {
      state, dirs, files: [...syncing].filter((e) => !e.removed).map((e) => e.path),
      done: (ok) => {
        if (ok) {
          const inc = new Set(included);
          for (const e of this.entries.values()) e.journaled = inc.has(e);
          this.notifySlots();
        } else {
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
    if (whole) await this.fill(e);
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
      uploads_in_flight: this.flusher.inFlight,
      last_error: this.flusher.lastError ?? this.lastError,
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
    await forgetHandlesUnder(this.chunksDir);
    return drained;
  }
}
