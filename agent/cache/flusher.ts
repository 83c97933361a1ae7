// docs/bucket-format.md §Write-back: uploads dirty data with bounded concurrency — a chunk written mostly whole
// as one chunk object, small writes of many chunks packed into one log segment — retries with exponential
// backoff and full jitter, writes a manifest naming the new objects, rewrites the journal, collects garbage,
// and compacts sparse segments when there is nothing else to do.
import type { Logger } from '../lib/log.js';
import type { ChunkCache } from './chunk-cache.js';
import type { Entry } from './entry.js';
import type { DirtyRuns } from './remote.js';
import type { CacheOptions } from './space.js';

/** The most often writes alone make the flusher look at the cache (ms). */
const WRITE_LOOK_MS = 10;

/** The cache's own options (space.ts), the ones the flusher reads. */
type FlusherOptions = Pick<CacheOptions, 'remote' | 'chunkSize' | 'uploadConcurrency' | 'retryBaseMs' | 'retryMaxMs' | 'commitIntervalMs' | 'uploadDelayMs' | 'segmentAgeMs' | 'log'>;

/** A log segment is sent once this much is ready (or sooner: pressure, age, close). */
const SEGMENT_TARGET = 4 * 1024 * 1024;
/** Largest segment. */
const SEGMENT_MAX = 8 * 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class Flusher {
  inFlight = 0;
  lastError: string | null = null;
  segmentsUploaded = 0;
  chunksUploaded = 0;
  compactions = 0;
  private committing = false;
  private compacting = false;
  private lastCommit = Date.now();
  /** Data bytes staged since the last manifest write. */
  private stagedBytes = 0;
  private commitFailures = 0;
  private commitNotBefore = 0;
  private compactNotBefore = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private closing = false;
  /** Admin flushes in progress: like close, everything dirty goes now, without stopping the flusher after. */
  private syncs = 0;
  private idleWaiters: Array<() => void> = [];
  private pumpQueued = false;
  private lastPump = 0;
  private writeLook: NodeJS.Timeout | undefined;

  constructor(private readonly cache: ChunkCache, private readonly o: FlusherOptions) {}

  backoff(attempt: number): number {
    const cap = Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** Math.min(attempt, 20));
    return this.o.retryBaseMs / 2 + Math.random() * cap;
  }

  /** Something changed (a write, an upload ended): one look at what to do next, at most once per event-loop turn. */
  kick(): void {
    if (this.stopped || this.pumpQueued) return;
    // Every write kicks, and a pump looks at every entry: the writes of one socket read (QD32) share one look.
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      if (!this.stopped) this.pump();
    });
  }

  private dirtyWaiting(): Entry[] {
    return [...this.cache.entries.values()].filter((e) => e.dirty && !e.uploading);
  }

  private dirtyBytes(): number {
    let dirty = 0;
    for (const e of this.cache.entries.values()) if (e.dirty) dirty += this.cache.writtenBytes(e);
    return dirty;
  }

  /** Small writes stop waiting to share a segment once half the cache is dirty. */
  private get pressure(): boolean {
    return this.cache.waitingForSlots > 0 || this.dirtyBytes() >= (this.cache.slots * this.o.chunkSize) / 2;
  }

  /** Writers wait, or soon will: even chunks still being written are uploaded. */
  private get full(): boolean {
    return this.cache.waitingForSlots > 0 || this.dirtyBytes() >= (this.cache.slots - 1) * this.o.chunkSize;
  }

  /** Sent as one chunk object: the entry holds the whole chunk and at least half of it was rewritten. */
  private whole(e: Entry): boolean {
    return e.valid === null && this.cache.writtenBytes(e) >= this.o.chunkSize / 2;
  }

  /**
   * Dirty chunks to upload now: those left alone for uploadDelayMs (so a chunk being filled by a sequential
   * writer is uploaded once, complete), everything at close, and under cache pressure even warm ones.
   */
  private candidates(): Entry[] {
    const now = Date.now();
    const waiting = this.dirtyWaiting().sort((a, b) => a.lastWrite - b.lastWrite);
    if (this.urgent) return waiting;
    const settledFor = (e: Entry): boolean => now - e.lastWrite >= this.o.uploadDelayMs;
    const gathered = (e: Entry, ms: number): boolean => e.writtenSince > 0 && now - e.writtenSince >= ms;
    // Under pressure, chunks still being written join too once their writes have gathered for half the age bound
    // (random writes keep every chunk warm; a hot block rewritten meanwhile is uploaded once, and a segment must
    // still fill up) — but not a chunk a sequential writer is filling right now, which will soon go whole. Without
    // pressure a chunk written all the time still goes once its oldest write not in the bucket reaches the bound.
    const gather = Math.max(this.o.uploadDelayMs, this.segmentAgeMs / 2);
    const out = waiting.filter((e) => settledFor(e) || gathered(e, this.pressure ? gather : this.segmentAgeMs));
    // Writers wait with nothing settled: the least recently written go even if still warm.
    if (out.length === 0 && waiting.length && this.inFlight === 0 && this.full) out.push(...waiting.slice(0, 64));
    return out;
  }

  private get idle(): boolean {
    return this.inFlight === 0 && !this.committing && !this.compacting && !this.o.remote.hasUncommitted && !this.anyStaged()
      && this.dirtyWaiting().length === 0;
  }

  private anyStaged(): boolean {
    for (const e of this.cache.entries.values()) if (e.stagedEpoch) return true;
    return false;
  }

  /**
   * A write made a chunk dirty: a look soon, at most one per WRITE_LOOK_MS from writes. A look scans every entry,
   * and at 40,000 writes/s a look per event-loop turn cost more of the event loop than the writes' own steps; what a
   * write makes ready waits uploadDelayMs anyway. (Writers waiting for room kick at once: space.ts.)
   */
  wrote(): void {
    if (this.stopped || this.pumpQueued || this.writeLook) return;
    const wait = this.lastPump + Math.min(WRITE_LOOK_MS, this.o.uploadDelayMs / 2) - performance.now();
    if (wait <= 0) return this.kick();
    this.writeLook = setTimeout(() => { this.writeLook = undefined; this.kick(); }, wait).unref();
  }

  private pump(): void {
    this.lastPump = performance.now();
    const ready = this.candidates();
    const small: Entry[] = [];
    for (const e of ready) {
      if (!this.whole(e)) { small.push(e); continue; }
      if (this.inFlight >= this.o.uploadConcurrency) break;
      void this.upload([e], true);
    }
    // A commit first: it may free the room writers wait for, which packing must not mistake for a stall.
    this.maybeCommit();
    if (small.length && this.inFlight < this.o.uploadConcurrency) this.packSegments(small);
    this.maybeCompact();
    if (this.idle) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    } else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.kick(); }, Math.max(10, Math.min(250, this.o.commitIntervalMs, this.o.uploadDelayMs / 2))).unref();
    }
  }

  /**
   * Packs small writes into log segments. A segment is cut only when it reaches SEGMENT_TARGET, when its oldest
   * write has waited segmentAgeMs (the bound on how long an acknowledged write stays out of the bucket), at a
   * flush point or close, or when writers wait for room and nothing is uploading (a cache too small to fill one):
   * never merely because the previous upload ended, so PUTs per GiB do not follow the write rate.
   */
  private packSegments(small: Entry[]): void {
    const now = Date.now();
    let bytes = 0;
    let oldest = now;
    for (const e of small) {
      bytes += this.cache.writtenBytes(e);
      if (e.writtenSince && e.writtenSince < oldest) oldest = e.writtenSince;
    }
    // A manifest about to be written frees staged chunks: that is not a stall.
    const stalled = this.cache.waitingForSlots > 0 && this.inFlight === 0 && !this.committing && !this.anyStaged();
    const cutAll = this.urgent || stalled || now - oldest >= this.segmentAgeMs;
    if (!cutAll && bytes < SEGMENT_TARGET) return;
    // Oldest writes first: they are the ones the age bound is about.
    small.sort((a, b) => (a.writtenSince || now) - (b.writtenSince || now));
    let batch: Entry[] = [];
    let size = 0;
    for (const e of small) {
      if (this.inFlight >= this.o.uploadConcurrency) return;
      const n = this.cache.writtenBytes(e);
      if (batch.length && size + n > SEGMENT_MAX) {
        void this.upload(batch, false);
        batch = [];
        size = 0;
        if (this.inFlight >= this.o.uploadConcurrency) return;
      }
      batch.push(e);
      size += n;
    }
    if (batch.length && (cutAll || size >= SEGMENT_TARGET)) void this.upload(batch, false);
  }

  /** Longest a small write waits to share a segment. */
  private get segmentAgeMs(): number {
    return this.o.segmentAgeMs ?? Math.max(this.o.uploadDelayMs * 5, this.o.commitIntervalMs * 2.5, 1000);
  }

  /** Uploads `entries` — one chunk object (`whole`) or one segment of their written runs — and stages it. */
  private async upload(entries: Entry[], whole: boolean): Promise<void> {
    for (const e of entries) e.uploading = true;
    this.inFlight++;
    const caps = new Map<Entry, NonNullable<Awaited<ReturnType<ChunkCache['capture']>>>>();
    let done = false;
    try {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          for (const e of entries) {
            if (caps.has(e) || e.removed) continue;
            const c = await this.cache.capture(e, whole);
            if (c) { caps.set(e, c); e.capturedBytes = c.data ? c.data.length : c.runs.reduce((a, r) => a + r[1].length, 0); }
          }
          if (caps.size === 0) { done = true; return; }
          const live = [...caps.keys()];
          const up = whole
            ? await this.o.remote.uploadChunk(live[0]!.index, caps.get(live[0]!)!.data!)
            : await this.o.remote.uploadRuns(live.map((e): DirtyRuns => ({ index: e.index, runs: caps.get(e)!.runs })));
          const byIndex = new Map(live.map((e) => [e.index, e]));
          const epoch = this.o.remote.stage(up, (i) => { const e = byIndex.get(i); return e !== undefined && !e.removed && this.cache.entries.get(i) === e; });
          for (const e of live) {
            if (e.removed) continue;
            e.stagedEpoch = epoch;
            // Clean only if nothing touched the chunk since its capture: a write that has taken the chunk lock
            // but not yet marked `written` (it does so after its data is in the file) is not in this upload.
            if (e.seq === caps.get(e)!.seq && (!e.written || e.written.count === 0)) e.dirty = false;
          }
          if (whole) this.chunksUploaded++; else this.segmentsUploaded++;
          for (const c of caps.values()) this.stagedBytes += c.data ? c.data.length : c.runs.reduce((a, r) => a + r[1].length, 0);
          done = true;
          return;
        } catch (err) {
          this.lastError = `upload of ${whole ? `chunk ${entries[0]!.index}` : `a segment of ${entries.length} chunks`}: ${(err as Error).message}`;
          if (attempt === 0 || attempt % 10 === 0) this.o.log.warn({ chunks: entries.length, attempt, err: (err as Error).message }, 'upload failed; retrying');
          await sleep(this.backoff(attempt));
        }
      }
    } finally {
      if (!done) for (const c of caps.values()) c.restore();
      for (const e of entries) { e.uploading = false; e.capturedBytes = 0; }
      this.inFlight--;
      this.kick();
    }
  }

  private maybeCommit(): void {
    if (this.committing || Date.now() < this.commitNotBefore) return;
    let staged = 0;
    for (const e of this.cache.entries.values()) if (e.stagedEpoch) staged++;
    // Staged entries with nothing uncommitted (a chunk of zeros that never had data) still need their
    // commit() round so they become clean: otherwise a cache full of them would never make room.
    if (!this.o.remote.hasUncommitted && staged === 0) return;
    const quiet = this.inFlight === 0 && this.dirtyWaiting().length === 0;
    const pressure = this.cache.waitingForSlots > 0 && staged >= 1;
    // A manifest rewrites every page that changed, and random writes change them all: while uploads continue,
    // write one only once the data staged since the last is worth several times what the manifest costs
    // (bounded by 10 commit intervals), so pages stay a small part of what is uploaded.
    const elapsed = Date.now() - this.lastCommit;
    const due = elapsed >= this.o.commitIntervalMs && (this.stagedBytes >= 4 * this.o.remote.commitCost || elapsed >= 10 * this.o.commitIntervalMs);
    if (quiet || pressure || due || (this.urgent && this.inFlight === 0)) void this.commit();
  }

  private async commit(): Promise<void> {
    this.committing = true;
    try {
      const staged = this.stagedBytes;
      const epoch = await this.o.remote.commit();
      this.stagedBytes = Math.max(0, this.stagedBytes - staged);
      this.lastCommit = Date.now();
      this.commitFailures = 0;
      this.cache.committed(epoch);
      await this.cache.journal.sync(false); // a trim: the committed chunks leave the journal, no chunk file is synced
      this.cache.notifySlots();
      await this.o.remote.collect().catch((err: Error) => {
        this.o.log.warn({ err: err.message }, 'garbage collection failed; will retry after the next manifest');
      });
      this.lastError = null;
    } catch (err) {
      this.lastError = `manifest write: ${(err as Error).message}`;
      this.commitNotBefore = Date.now() + this.backoff(this.commitFailures++);
      this.o.log.warn({ err: (err as Error).message }, 'manifest write failed; retrying');
    } finally {
      this.committing = false;
      this.maybeCompact();
      this.kick();
    }
  }

  /**
   * One compaction at a time, beside uploads but never while writers wait for room or uploads use every slot,
   * so it does not delay a client's data.
   */
  private maybeCompact(): void {
    if (this.compacting || this.urgent || this.stopped || Date.now() < this.compactNotBefore) return;
    if (this.inFlight >= this.o.uploadConcurrency || this.cache.waitingForSlots > 0 || this.full) return;
    this.compacting = true;
    void this.o.remote.compact().then((did) => {
      if (did) this.compactions++;
      else this.compactNotBefore = Date.now() + 1000;
    }, (err: Error) => {
      this.compactNotBefore = Date.now() + this.backoff(3);
      this.o.log.warn({ err: err.message }, 'compaction failed; will retry');
    }).finally(() => { this.compacting = false; this.kick(); });
  }

  private get urgent(): boolean {
    return this.closing || this.syncs > 0;
  }

  /**
   * A flush point (the admin's flush, a snapshot): uploads everything dirty now and writes a root; true once
   * nothing is dirty or uncommitted, false after `timeoutMs`. Unlike drain() the flusher goes back to its pace after.
   */
  async sync(timeoutMs: number): Promise<boolean> {
    this.syncs++;
    try {
      this.commitNotBefore = 0;
      return await this.waitIdle(timeoutMs);
    } finally {
      this.syncs--;
    }
  }

  /** Resolves true once nothing is dirty or uncommitted, false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    return this.waitIdle(timeoutMs);
  }

  private async waitIdle(timeoutMs: number): Promise<boolean> {
    this.kick();
    const deadline = Date.now() + timeoutMs;
    while (!this.idle) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), sleep(Math.min(left, 100))]);
      this.kick();
    }
    return true;
  }


  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.writeLook) clearTimeout(this.writeLook);
    this.writeLook = undefined;
  }
}
