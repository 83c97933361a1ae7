// docs/bucket-format.md §Local cache: the read path — cache hits (preadv2 on the event loop), misses fetched
// from the bucket (a ranged GET, or the whole chunk for sequential readers), read-ahead and background warming.
import { open } from 'node:fs/promises';
import { BackstoreError, BackstoreErrorCode } from '../backstores/backstore.js';
import { openFd, readInto, writeAt, type Entry } from './entry.js';
import { allocData } from '../lib/slab.js';
import { fastIo, type FastIo } from '../native/fast-io.js';
import { CacheSpace, type CacheOptions } from './space.js';

export abstract class CacheReads extends CacheSpace {
  protected readonly fetches = new Map<number, Promise<{ version: number; data: Buffer }>>();
  protected lastReadEnd = -1;
  /** preadv2(RWF_NOWAIT) for cache hits (undefined: addon absent, every read takes readPieces). */
  protected readonly io: FastIo | undefined;
  /** Each entry's `ready` promise once it has resolved (a promise's state cannot be read synchronously). */
  protected readonly readied = new WeakMap<Entry, Promise<void>>();
  hits = 0;
  misses = 0;
  /** performance.now() of the last read that had to go to the bucket: background prefetch yields to those. */
  lastMissAt = 0;
  /** Hits served by cachedRead (on the event loop, no threadpool). */
  fastReads = 0;
  lastError: string | null = null;

  protected constructor(o: CacheOptions) {
    super(o);
    // OUTPOST_CACHE_FAST_READ=0: every read through readPieces (to measure the difference).
    this.io = process.env.OUTPOST_CACHE_FAST_READ === '0' ? undefined : fastIo(o.log);
  }


  protected bounded<T>(p: Promise<T>, what: string): Promise<T> {
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
  protected fetch(index: number): Promise<{ version: number; data: Buffer }> {
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
  protected fetchRange(index: number, off: number, len: number): Promise<Buffer> {
    return this.bounded(this.o.remote.read(index, off, len, this.o.readTimeoutMs), `chunk ${index}`);
  }

  /**
   * Makes every sector of `e` touching [start, end) valid, filling the gaps from the bucket's copy (zeros when it
   * has none). Only the missing range is fetched; sectors written meanwhile keep the newer data. The filled sectors
   * join the cache, so they need room in its budget: `reserved` when the caller holds it already, else it is taken
   * here, evicting clean chunks; false (nothing filled) when only uploads would make the room.
   */
  async fill(e: Entry, start: number, end: number, reserved: boolean): Promise<boolean> {
    if (!e.valid) return true;
    const gaps = e.valid.invalidRuns(start, end);
    if (gaps.length === 0) return true;
    const from = gaps[0]![0];
    const to = gaps[gaps.length - 1]![1];
    const need = reserved ? 0 : gaps.reduce((a, [s, t]) => a + t - s, 0);
    if (need && !(await this.reserveSlot(false, need))) return false;
    try {
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
      return true;
    } finally {
      if (need) { this.reserved -= need; this.notifySlots(); }
    }
  }

  /**
   * Chunk bytes [off, off+dst.length) of a partly cached chunk without caching the rest (no room for it): the
   * bucket's copy of the range, overlaid by the sectors the cache holds (they are newer).
   */
  protected async readOverlaid(e: Entry, off: number, dst: Buffer): Promise<void> {
    const end = off + dst.length;
    const base = this.o.remote.hasData(e.index) ? await this.fetchRange(e.index, off, dst.length) : null;
    await e.lock.run(async () => {
      if (base) base.copy(dst); else dst.fill(0);
      for (const [s, t] of e.valid ? e.valid.runs(false, off, end) : [[off, end] as [number, number]]) {
        const a = Math.max(s, off);
        const b = Math.min(t, end);
        await readInto(e.path, dst.subarray(a - off, b - off), a);
      }
    });
  }

  protected async install(index: number, data: Buffer, version: number): Promise<void> {
    if (this.closed || this.entries.has(index) || !(await this.reserveSlot(false))) return;
    this.reserved -= this.o.chunkSize;
    if (this.entries.has(index) || this.o.remote.version(index) !== version) { this.notifySlots(); return; }
    this.createEntry(index, null, async (e) => {
      const fh = await open(e.path, 'w');
      try { await fh.write(data, 0, data.length, 0); } finally { await fh.close(); }
    });
  }

  protected prefetch(index: number): void {
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

  protected *pieces(offset: number, length: number): Generator<[index: number, off: number, len: number, pos: number]> {
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

  read(offset: number, length: number): Promise<Buffer> {
    const hit = this.cachedRead(offset, length);
    return hit ? Promise.resolve(hit) : this.readPieces(offset, length);
  }

  /**
   * A cache hit inside one chunk whose file is open: preadv2(RWF_NOWAIT) on the event loop into a
   * data-path buffer, as fileio does (issue 15) — no threadpool hand-off, no promise per piece. Anything
   * else (a miss, a sector not held, a page not in the page cache, EOF of a sparse file) returns
   * undefined and takes readPieces, which is always correct.
   */
  cachedRead(offset: number, length: number): Buffer | undefined {
    const io = this.io;
    const held = io && this.heldRange(offset, length);
    if (!held) return undefined;
    const { e, off } = held;
    const fd = openFd(e.path);
    if (fd === undefined) return undefined;
    const out = allocData(length);
    if (io.readNowait(fd, out, off) !== length) return undefined;
    this.hits++;
    this.fastReads++;
    this.o.onRead?.(e.index); // the heat map counts hits too (agent/sites/heat-map.ts)
    this.touch(e);
    this.readAhead(offset, length, e.index);
    return out;
  }

  /**
   * What the fast paths (cachedRead, ChunkCache.writeCached) may serve without an await: a range inside one
   * chunk whose entry is ready and holds every sector of it; undefined otherwise.
   */
  protected heldRange(offset: number, length: number): { e: Entry; off: number } | undefined {
    const cs = this.o.chunkSize;
    const index = Math.floor(offset / cs);
    const off = offset - index * cs;
    if (length === 0 || off + length > cs) return undefined;
    const e = this.entries.get(index);
    if (!e || e.removed || this.readied.get(e) !== e.ready || (e.valid && !e.valid.coversBytes(off, off + length))) return undefined;
    return { e, off };
  }

  /** Waits for `e`'s file to be ready; the fast paths skip this await for as long as e.ready stays that promise. */
  protected async whenReady(e: Entry): Promise<void> {
    const ready = e.ready;
    await ready;
    this.readied.set(e, ready);
  }

  protected async readPieces(offset: number, length: number): Promise<Buffer> {
    const out = allocData(length);
    const jobs: Promise<void>[] = [];
    let last = -1;
    const sequential = offset === this.lastReadEnd;
    for (const [index, off, len, pos] of this.pieces(offset, length)) {
      this.o.onRead?.(index);
      jobs.push(this.readPiece(index, off, out.subarray(pos, pos + len), sequential || len === this.o.chunkSize));
      last = index;
    }
    this.readAhead(offset, length, last);
    await Promise.all(jobs);
    return out;
  }

  /** A read that continues the previous one prefetches the chunks after `last`. */
  protected readAhead(offset: number, length: number, last: number): void {
    if (offset === this.lastReadEnd && this.o.readAhead > 0) {
      const n = Math.ceil(this.o.size / this.o.chunkSize);
      for (let k = 1; k <= this.o.readAhead && last + k < n; k++) this.prefetch(last + k);
    }
    this.lastReadEnd = offset + length;
  }

  /** A miss fetches the whole chunk (and keeps it) for sequential readers, else exactly the range asked for. */
  protected async readPiece(index: number, off: number, dst: Buffer, whole: boolean): Promise<void> {
    for (;;) {
      const e = this.entries.get(index);
      if (e) {
        e.users++;
        try {
          await this.whenReady(e);
          // Sectors not held are filled into the cache if it has room, else read around it.
          const around = e.valid !== null && !e.valid.coversBytes(off, off + dst.length) && !(await this.fill(e, off, off + dst.length, false));
          if (e.removed) continue;
          await (around ? this.readOverlaid(e, off, dst) : readInto(e.path, dst, off));
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

}
