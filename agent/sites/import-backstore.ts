// docs/import.md §Serving while copying: the importing LUN over the object backstore. Regions not copied yet are
// read from the source; a write copies its region first unless it covers it whole; the background copy
// skips every region already copied, so it never overwrites a write; progress is saved after the volume's flush.
// The copy loads whole chunks straight into the bucket (bulk-load.ts) and falls back to the cache per region.
import { rm } from 'node:fs/promises';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore, checkObjectRange } from '../backstores/backstore.js';
import type { BulkLoader } from '../backstores/object/bulk-load.js';
import { Mutex } from '../cache/mutex.js';
import { settleAll } from '../lib/settle.js';
import { jobs, type Job } from '../jobs.js';
import type { Logger } from '../lib/log.js';
import { InitiatorError } from '../initiator/errors.js';
import { SourceLink, probe } from './import-source.js';
import { RegionMap, encodeRegions, progressPath, writeProgress, type ProgressRecord } from './import-progress.js';

/** Bytes per progress bit: small enough that a write's copy-first costs little, large enough for fast copying. */
export const REGION_SIZE = 1024 * 1024;

interface Piece { region: number; offset: number; length: number; pos: number; full: boolean }

export class ImportBackstore implements Backstore {
  readonly plugin = 'object' as const;
  readonly thinProvisioned: boolean;
  private readonly locks = new Map<number, Mutex>();
  private readonly persistLock = new Mutex();
  private copying: Promise<void> | undefined;
  private stopping = false;
  private closed = false;
  private job: Job | undefined;
  private phase = 'copying';
  private readonly wakers = new Set<() => void>();
  private copiedThisRun = 0;
  private startedAt = 0;
  /** Chunk-sized spans of regions being loaded straight into the bucket now (for `info`). */
  private readonly inFlight = new Set<number>();
  private readonly bulk: BulkLoader | undefined;
  /** Regions per bulk-loaded chunk (1 when the volume cannot be bulk-loaded: the copy goes through the cache). */
  private readonly span: number;

  constructor(private readonly inner: Backstore, private readonly name: string, private readonly source: string, readonly size: number,
    private readonly blockSize: number, private readonly cacheDir: string, private readonly regions: RegionMap,
    private readonly fg: SourceLink, private readonly bg: SourceLink, private readonly log: Logger,
    private readonly o: { rate: number; done: boolean; workers: number; ownFiles: readonly string[] }) {
    this.thinProvisioned = inner.thinProvisioned;
    // A volume at the bucket when opened (not deferred) whose chunks are whole regions takes chunk objects directly.
    const bulk = (inner as { bulkLoader?: () => BulkLoader }).bulkLoader?.();
    const per = bulk && bulk.chunkSize % REGION_SIZE === 0 ? bulk.chunkSize / REGION_SIZE : 0;
    this.bulk = per >= 1 ? bulk : undefined;
    this.span = per >= 1 ? per : 1;
  }

  get writeBack(): boolean {
    return this.inner.writeBack;
  }

  get readOnly(): boolean {
    return Boolean((this.inner as { readOnly?: boolean }).readOnly);
  }

  private get done(): boolean {
    return this.o.done;
  }

  start(): void {
    if (this.done) return;
    this.job = jobs.start('import', `/backstores/object/${this.name}`, { total: this.size, unit: 'bytes', phase: 'copying' });
    this.job.set(this.copiedBytes());
    this.copying = this.copyLoop().catch((e: Error) => {
      this.log.error({ err: e.message }, 'import copy stopped');
      this.job?.fail(e);
    });
  }

  private copiedBytes(): number {
    let n = this.regions.count * REGION_SIZE;
    const last = this.regions.regions - 1;
    if (this.regions.has(last)) n -= this.regions.regions * REGION_SIZE - this.size;
    return n;
  }

  private lock(r: number): Mutex {
    let m = this.locks.get(r);
    if (!m) { m = new Mutex(); this.locks.set(r, m); }
    return m;
  }

  private regionRange(r: number): [number, number] {
    const start = r * REGION_SIZE;
    return [start, Math.min(this.size, start + REGION_SIZE) - start];
  }

  private *pieces(offset: number, length: number): Generator<Piece> {
    for (let pos = 0; pos < length;) {
      const abs = offset + pos;
      const region = Math.floor(abs / REGION_SIZE);
      const [start, rlen] = this.regionRange(region);
      const len = Math.min(start + rlen - abs, length - pos);
      yield { region, offset: abs, length: len, pos, full: abs === start && len === rlen };
      pos += len;
    }
  }

  private check(offset: number, length: number): void {
    checkObjectRange(this.closed, offset, length, this.size);
  }

  /** Source bytes, block-aligned; a source that is down is a retryable NOT READY (the range is not copied yet). */
  private async fromSource(link: SourceLink, offset: number, length: number): Promise<Buffer> {
    const bs = this.blockSize;
    const start = Math.floor(offset / bs) * bs;
    const end = Math.ceil((offset + length) / bs) * bs;
    try {
      const b = await link.read(start, end - start, bs);
      return start === offset && end === offset + length ? b : b.subarray(offset - start, offset - start + length);
    } catch (e) {
      if (e instanceof InitiatorError) {
        // Seen first by a foreground read when the copy is pausing (import_rate): `info` says so at once.
        if (e.transient && this.phase === 'copying') { this.phase = `waiting for source: ${e.message}`; this.job?.setPhase(this.phase); }
        throw new BackstoreError(e.transient || e.code === 'CLOSED' ? BackstoreErrorCode.NOT_READY : BackstoreErrorCode.IO,
          `range ${offset}+${length} not imported yet and the source ${this.source} is unavailable (${e.message}); retry`);
      }
      throw e;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    if (this.done) return this.inner.read(offset, length);
    const parts = [...this.pieces(offset, length)];
    if (parts.every((p) => this.regions.has(p.region))) return this.inner.read(offset, length);
    const out = Buffer.allocUnsafe(length);
    await Promise.all(parts.map(async (p) => {
      const b = this.regions.has(p.region) ? await this.inner.read(p.offset, p.length) : await this.fromSource(this.fg, p.offset, p.length);
      b.copy(out, p.pos);
    }));
    return out;
  }

  /** Makes region r hold its source bytes in the volume (unless already) and then runs `then` under its lock. */
  private async settle(r: number, link: SourceLink, full: boolean, then?: () => Promise<void>): Promise<boolean> {
    const m = this.lock(r);
    try {
      return await this.run(m, r, link, full, then);
    } finally {
      if (!m.locked) this.locks.delete(r); // one mutex per region ever touched would grow with the LUN
    }
  }

  private run(m: Mutex, r: number, link: SourceLink, full: boolean, then?: () => Promise<void>): Promise<boolean> {
    return m.run(async () => {
      let fresh = false;
      if (!this.regions.has(r) && !full) {
        const [start, len] = this.regionRange(r);
        const data = await this.fromSource(link, start, len);
        await this.inner.write(start, [data]);
        fresh = true;
      }
      // The write itself runs under the lock so that the background copy cannot land between the two.
      if (then) await then();
      if (!this.regions.has(r)) { this.regions.mark(r); fresh = true; }
      return fresh;
    });
  }

  async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    this.check(offset, length);
    if (this.done || [...this.pieces(offset, length)].every((p) => this.regions.has(p.region))) return this.inner.write(offset, chunks);
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
    const settled = await settleAll([...this.pieces(offset, length)].map((p) => {
      const part = data.subarray(p.pos, p.pos + p.length);
      if (this.regions.has(p.region)) return this.inner.write(p.offset, [part]).then(() => false);
      return this.settle(p.region, this.fg, p.full, () => this.inner.write(p.offset, [part]));
    }));
    // A write-through LUN acknowledges durable writes: the record must say those regions are ours before that.
    if (!this.inner.writeBack && settled.some(Boolean)) await this.persist(false);
    this.job?.set(this.copiedBytes());
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    if (this.done) return this.inner.unmap(offset, length);
    await Promise.all([...this.pieces(offset, length)].map((p) => this.regions.has(p.region) ? this.inner.unmap(p.offset, p.length)
      : this.settle(p.region, this.fg, p.full, () => this.inner.unmap(p.offset, p.length))));
    await this.persist(false);
  }

  /** The volume's flush, then the record of what it now holds durably (a region copied before the flush began). */
  async flush(): Promise<void> {
    this.check(0, 0);
    await this.persist(false);
  }

  private persist(done: boolean): Promise<void> {
    return this.persistLock.run(async () => {
      const snap = this.regions.clone();
      await this.inner.flush();
      // Regions loaded as chunk objects are marked once staged; a root must name them before the record does.
      await this.bulk?.commit();
      const r: ProgressRecord = { version: 1, source: this.source, size: this.size, region_size: REGION_SIZE, copied: encodeRegions(snap), done };
      await writeProgress(this.cacheDir, r);
    });
  }

  async allocation(offset: number, length: number): Promise<AllocationRange[]> {
    this.check(offset, length);
    const inner = this.inner.allocation ? await this.inner.allocation(offset, length) : [{ offset, length, mapped: true }];
    if (this.done) return inner;
    // A range not copied yet holds the source's data: mapped, whatever the volume says.
    const out: AllocationRange[] = [];
    for (const a of inner) {
      for (const p of this.pieces(a.offset, a.length)) {
        const mapped = a.mapped || !this.regions.has(p.region);
        const last = out[out.length - 1];
        if (last && last.mapped === mapped && last.offset + last.length === p.offset) last.length += p.length;
        else out.push({ offset: p.offset, length: p.length, mapped });
      }
    }
    return out;
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((r) => {
      const wake = () => { clearTimeout(t); this.wakers.delete(wake); r(); };
      const t = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Runs `fn` holding the locks of regions `rs` (taken in ascending order, as no other path holds two). */
  private lockAll<T>(rs: readonly number[], fn: () => Promise<T>): Promise<T> {
    if (rs.length === 0) return fn();
    const m = this.lock(rs[0]!);
    return m.run(() => this.lockAll(rs.slice(1), fn)).finally(() => { if (!m.locked) this.locks.delete(rs[0]!); });
  }

  /**
   * Copies the chunk-sized span of regions from `first`: as one chunk object straight into the bucket when no
   * region of it is copied or written yet (its writes wait meanwhile, so the copy can never land over one);
   * otherwise, or if the volume refuses the load, region by region through the cache. Returns bytes copied.
   */
  private async copyUnit(first: number): Promise<number> {
    const rs: number[] = [];
    for (let r = first; r < Math.min(first + this.span, this.regions.regions); r++) rs.push(r);
    const start = first * REGION_SIZE;
    const bytes = this.span * REGION_SIZE;
    const bulk = this.bulk;
    if (bulk && rs.length === this.span && start + bytes <= this.size) {
      const loaded = await this.lockAll(rs, async () => {
        if (rs.some((r) => this.regions.has(r))) return false;
        this.inFlight.add(first);
        try {
          const t0 = performance.now();
          const data = await this.fromSource(this.bg, start, bytes);
          const t1 = performance.now();
          const ok = !this.stopping && (await bulk.load(start / bulk.chunkSize, data));
          // Per-stage times (OUTPOST_LOG_LEVEL=debug) show which side, source or bucket, bounds the copy.
          this.log.debug({ region: first, read_ms: Math.round(t1 - t0), load_ms: Math.round(performance.now() - t1), loaded: ok }, 'import: chunk copied');
          if (!ok) return false;
          for (const r of rs) this.regions.mark(r);
          return true;
        } finally {
          this.inFlight.delete(first);
        }
      });
      if (loaded) return bytes;
    }
    let n = 0;
    for (const r of rs) {
      if (this.stopping) break;
      if (await this.settle(r, this.bg, false)) n += this.regionRange(r)[1];
    }
    return n;
  }

  /** The background copy: workers take chunks in order from the first not copied, at most `rate` bytes/s. */
  private async copyLoop(): Promise<void> {
    this.startedAt = Date.now();
    // Chunks in flight together (each worker reads one while another uploads); a low rate bound gets fewer so
    // that it holds from the first second.
    const unit = this.span * REGION_SIZE;
    const parallel = this.o.rate > 0 ? Math.max(1, Math.min(this.o.workers, Math.floor(this.o.rate / unit))) : this.o.workers;
    // A source that changed size or block size since the create must not be copied from.
    for (let wait = 500; ; wait = Math.min(10_000, wait * 2)) {
      if (this.stopping) return;
      try {
        await probe(this.bg, { size: this.size, blockSize: this.blockSize, served: [] });
        break;
      } catch (e) {
        const msg = (e as Error).message;
        if (e instanceof BackstoreError && e.code !== BackstoreErrorCode.NOT_READY) {
          this.phase = `stopped: ${msg}`;
          this.log.error({ source: this.source, err: msg }, 'import copy stopped: the source no longer matches this LUN');
          this.job?.fail(e);
          return;
        }
        this.phase = `waiting for source: ${msg}`;
        this.job?.setPhase(this.phase);
        await this.pause(wait);
      }
    }
    let cursor = 0;
    let failing = 0;
    let backoff = 500;
    const saver = setInterval(() => { void this.persist(false).catch((e: Error) => this.log.warn({ err: e.message }, 'import: saving progress failed')); }, 2000);
    const worker = async (): Promise<void> => {
      while (!this.stopping) {
        const r = this.regions.nextUnmarked(cursor);
        if (r < 0) return;
        const first = r - (r % this.span);
        cursor = first + this.span;
        try {
          this.copiedThisRun += await this.copyUnit(first);
          this.job?.set(this.copiedBytes());
          if (failing) { failing = 0; backoff = 500; }
          if (this.phase !== 'copying') { this.phase = 'copying'; this.job?.setPhase('copying'); this.log.info({ source: this.source }, 'import copy resumed'); }
        } catch (e) {
          if (this.stopping) return;
          cursor = Math.min(cursor, first); // try that chunk again
          const msg = (e as Error).message;
          if (this.phase === 'copying') this.log.warn({ source: this.source, err: msg }, 'import copy waiting for the source');
          this.phase = `waiting for source: ${msg}`;
          this.job?.setPhase(this.phase);
          failing++;
          await this.pause(backoff);
          backoff = Math.min(10_000, backoff * 2);
          continue;
        }
        if (this.o.rate > 0) {
          const ahead = this.copiedThisRun / this.o.rate * 1000 - (Date.now() - this.startedAt);
          if (ahead > 0) await this.pause(ahead);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: parallel }, worker));
    } finally {
      clearInterval(saver);
    }
    if (this.stopping) return;
    await this.persist(true);
    this.o.done = true;
    await Promise.all([this.fg.close(), this.bg.close()]);
    this.phase = 'done';
    this.job?.finish();
    this.log.info({ source: this.source, seconds: Math.round((Date.now() - this.startedAt) / 1000) }, 'import complete: every region copied; source disconnected');
  }

  async close(): Promise<void> {
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    this.stopping = true;
    for (const w of [...this.wakers]) w();
    this.bg.abort(); // a copy waiting on a dead source would otherwise hold the close for its command timeout
    await this.copying;
    this.closed = true;
    try {
      if (!this.done) await this.persist(false);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'import: progress not saved at close (the next start copies those regions again)');
    }
    if (!this.done) this.job?.cancel();
    await Promise.all([this.fg.close(), this.bg.close()]);
    await this.inner.close();
  }

  /** The storage object was deleted: after close, its progress record and the CHAP secret kept for it go too. */
  async forget(): Promise<void> {
    const p = progressPath(this.cacheDir);
    for (const f of [p, `${p}.tmp`, ...this.o.ownFiles]) await rm(f, { force: true });
  }

  stats(): Record<string, number | string | null> {
    const s = { ...(this.inner.stats?.() ?? {}) };
    s.import_source = this.source;
    if (this.done) {
      s.import_state = 'done; source disconnected';
      s.import_percent = 100;
      return s;
    }
    const snap = this.job?.snapshot();
    s.import_state = this.phase;
    s.import_copied_bytes = this.copiedBytes();
    s.import_percent = Math.floor(this.copiedBytes() / this.size * 1000) / 10;
    s.import_rate_mb_s = snap ? Math.round(snap.rate / 1e5) / 10 : 0;
    s.import_eta_s = snap?.eta_s === null || snap?.eta_s === undefined ? null : Math.round(snap.eta_s);
    s.import_source_connected = this.fg.connected || this.bg.connected ? 'yes' : 'no';
    s.import_copying = [...this.inFlight].sort((a, b) => a - b).map((r) => `regions ${r}-${r + this.span - 1}`).join(', ') || 'none in flight';
    return s;
  }
}
