// docs/bucket-format.md §Write-back: uploads dirty chunks with bounded concurrency (a chunk rewritten while
// dirty is uploaded once, with its latest content), retries with exponential backoff and full jitter, then
// writes a manifest naming the new chunk objects, rewrites the journal and collects garbage.
import type { Logger } from '../lib/log.js';
import type { ChunkCache } from './chunk-cache.js';
import type { Entry } from './entry.js';
import type { ChunkRemote } from './remote.js';

interface FlusherOptions {
  remote: ChunkRemote;
  uploadConcurrency: number;
  retryBaseMs: number;
  retryMaxMs: number;
  commitIntervalMs: number;
  uploadDelayMs: number;
  log: Logger;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class Flusher {
  inFlight = 0;
  lastError: string | null = null;
  private committing = false;
  private lastCommit = Date.now();
  private commitFailures = 0;
  private commitNotBefore = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private closing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly cache: ChunkCache, private readonly o: FlusherOptions) {}

  backoff(attempt: number): number {
    const cap = Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** Math.min(attempt, 20));
    return this.o.retryBaseMs / 2 + Math.random() * cap;
  }

  kick(): void {
    if (this.stopped) return;
    this.pump();
  }

  private dirtyWaiting(): Entry[] {
    return [...this.cache.entries.values()].filter((e) => e.dirty && !e.uploading);
  }

  /**
   * Dirty chunks to upload now: those left alone for uploadDelayMs (so a chunk being filled by a sequential
   * writer is uploaded once, complete), everything at close, and under cache pressure the least recently
   * written one even if it is still warm.
   */
  private candidates(): Entry[] {
    const now = Date.now();
    const waiting = this.dirtyWaiting().sort((a, b) => a.lastWrite - b.lastWrite);
    if (this.closing) return waiting;
    const out = waiting.filter((e) => now - e.lastWrite >= this.o.uploadDelayMs);
    if (out.length === 0 && waiting.length && this.inFlight === 0) {
      let dirty = 0;
      for (const e of this.cache.entries.values()) if (e.dirty) dirty++;
      if (this.cache.waitingForSlots > 0 || dirty >= this.cache.slots - 1) out.push(waiting[0]!);
    }
    return out;
  }

  private get idle(): boolean {
    return this.inFlight === 0 && !this.committing && !this.o.remote.hasUncommitted && this.dirtyWaiting().length === 0;
  }

  private pump(): void {
    for (const e of this.candidates()) {
      if (this.inFlight >= this.o.uploadConcurrency) break;
      void this.upload(e);
    }
    this.maybeCommit();
    if (this.idle) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    } else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.kick(); }, Math.max(10, Math.min(250, this.o.commitIntervalMs, this.o.uploadDelayMs / 2))).unref();
    }
  }

  private async upload(e: Entry): Promise<void> {
    e.uploading = true;
    this.inFlight++;
    try {
      for (let attempt = 0; !e.removed && !this.stopped; attempt++) {
        try {
          const snap = await this.cache.snapshot(e);
          if (!snap) return;
          const zero = snap.data.equals(this.cache.zeroChunk);
          const id = zero ? null : await this.o.remote.upload(e.index, snap.data);
          if (e.removed) { if (id) this.o.remote.discard(id); return; }
          e.stagedEpoch = this.o.remote.stage(e.index, id);
          if (e.seq === snap.seq) e.dirty = false;
          return;
        } catch (err) {
          this.lastError = `upload of chunk ${e.index}: ${(err as Error).message}`;
          if (attempt === 0 || attempt % 10 === 0) this.o.log.warn({ chunk: e.index, attempt, err: (err as Error).message }, 'chunk upload failed; retrying');
          await sleep(this.backoff(attempt));
        }
      }
    } finally {
      e.uploading = false;
      this.inFlight--;
      this.kick();
    }
  }

  private maybeCommit(): void {
    if (this.committing || !this.o.remote.hasUncommitted || Date.now() < this.commitNotBefore) return;
    let staged = 0;
    for (const e of this.cache.entries.values()) if (e.stagedEpoch) staged++;
    const quiet = this.inFlight === 0 && this.dirtyWaiting().length === 0;
    const pressure = this.cache.waitingForSlots > 0 && staged >= Math.max(1, Math.floor(this.cache.slots / 4));
    const due = Date.now() - this.lastCommit >= this.o.commitIntervalMs;
    if (quiet || pressure || due || (this.closing && this.inFlight === 0)) void this.commit();
  }

  private async commit(): Promise<void> {
    this.committing = true;
    try {
      const epoch = await this.o.remote.commit();
      this.lastCommit = Date.now();
      this.commitFailures = 0;
      this.cache.committed(epoch);
      await this.cache.journal.sync();
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
      this.kick();
    }
  }

  /** Resolves true once nothing is dirty or uncommitted, false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.closing = true;
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
  }
}
