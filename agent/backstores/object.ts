// Backstore plugin 'object' (docs/bucket-format.md): a volume kept in an S3 bucket behind the bounded local
// block cache (agent/cache/). The bucket holds a descriptor, immutable chunk objects and paged manifests.
// Opening is in object/open.ts, the configuration in object/spec.ts.
import type { Logger } from '../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore, checkObjectRange } from './backstore.js';
import type { ChunkCache } from '../cache/chunk-cache.js';
import { chunkAllocation } from './allocation.js';
import type { Bucket } from './object/bucket.js';
import type { VolumeManifest } from './object/manifest.js';
import type { WriterLease } from './object/lease.js';
import type { ObjectStore } from './object/store.js';
import { IoBarrier } from './object/io-barrier.js';
import type { ObjectSites } from '../sites/object-sites.js';
import { VolumeSnapshots } from './object/snapshots.js';
import { startFlushJob } from './object/flush-job.js';
import { commitLoaded, loadChunk, type BulkLoader } from './object/bulk-load.js';

export type { ObjectBackstoreSpec } from './object/spec.js';
export { openObjectBackstore } from './object/open.js';
/** The volume as opened under one lease role: a promotion replaces all of it (agent/sites/promote.ts). */
export interface VolumeParts {
  cache: ChunkCache;
  manifest: VolumeManifest;
  store: ObjectStore;
  sweeping: Promise<unknown>;
  /** Opened as the writer (false: a reader's image, exported write-protected). */
  writer: boolean;
}

export interface PromoteOutcome {
  epoch: number;
  /** Holder of the lease this promotion replaced (null: there was none). */
  previous: string | null;
  forced: boolean;
  /** How long the promotion waited for the replaced writer to be fenced. */
  fenceWaitMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ObjectBackstore implements Backstore {
  readonly plugin = 'object' as const;
  readonly thinProvisioned = true;
  private closed = false;
  readonly snapshots: VolumeSnapshots;
  private promoting: string | null = null;
  /** Set when a failed promotion could not reopen the volume at all: every command then fails with it. */
  private broken: string | null = null;
  private readonly listeners: Array<() => void> = [];
  private readonly closeHooks: Array<() => Promise<void>> = [];
  private readonly statsHooks: Array<() => Record<string, string>> = [];
  /** Commands in flight: all held back while a promotion swaps the volume parts, writes while a snapshot is taken. */
  private readonly barrier = new IoBarrier();

  constructor(readonly size: number, readonly writeBack: boolean, private parts: VolumeParts, private readonly bucket: Bucket,
    private readonly closeTimeoutMs: number, private readonly log: Logger, private readonly chunkSize: number,
    private readonly lease: WriterLease, private readonly reopen: (lease: WriterLease) => Promise<VolumeParts>,
    private readonly site: { name: string; prefix: string; readTimeoutMs: number; readListeners: Array<(index: number) => void> },
    snap: { timeoutMs: number; flushTimeoutMs: number; what: string }, readonly sites: ObjectSites, private siteSpec: Record<string, unknown>) {
    this.snapshots = new VolumeSnapshots(bucket, site.prefix, () => this.parts, lease, this.barrier, { ...snap, size });
  }

  /** The primary's own recovery point: age of the oldest acknowledged write not yet in a root (0 when clean). */
  primaryRpoMs(): number {
    return Number(this.cache.stats().oldest_dirty_age_ms) || 0;
  }

  // ---- for the work above the backstore (agent/sites/: heat map, prefetch) ----

  /** Calls `fn` with each chunk an initiator's read touches. */
  onChunkRead(fn: (index: number) => void): void {
    this.site.readListeners.push(fn);
  }

  /** Adds figures to stats() (a prefetch's progress line). */
  addStats(fn: () => Record<string, string>): void {
    this.statsHooks.push(fn);
  }

  /** Runs `fn` first when the backstore closes (a heat map's last write goes before the lease is released). */
  onClose(fn: () => Promise<void>): void {
    this.closeHooks.push(fn);
  }

  get epoch(): number {
    return this.lease.epoch;
  }

  get cacheBytes(): number {
    return this.cache.slots * this.chunkSize;
  }

  /** ms since the last read that had to go to the bucket. */
  get foregroundIdleMs(): number {
    return performance.now() - this.cache.lastMissAt;
  }

  /** Fetches chunk `index` into the cache in the background (false: already there, unmapped, or no room). */
  warmChunk(index: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.io(() => this.cache.warm(index));
  }

  /** Reads `<prefix>rel` (null: absent). */
  getMeta(rel: string): Promise<Buffer | null> {
    return this.bucket.get(this.site.prefix + rel, this.site.readTimeoutMs);
  }

  /** Keys under `<prefix>rel`, relative to the prefix, in key order. */
  async listMeta(rel: string, limit = Infinity): Promise<string[]> {
    return (await this.bucket.list(this.site.prefix + rel, limit, this.site.readTimeoutMs)).map((k) => k.slice(this.site.prefix.length));
  }

  /** Writes `<prefix>rel` only as the writer, under the same gate as a root (false: not allowed now). */
  async putMeta(rel: string, body: Buffer): Promise<boolean> {
    if (!this.parts.writer || !this.lease.mayMutate(this.site.readTimeoutMs)) return false;
    await this.bucket.put(this.site.prefix + rel, body, this.site.readTimeoutMs, 'application/json');
    return true;
  }

  /** An import's background copy (agent/sites/import-backstore.ts): whole chunks straight to the bucket, under the writer's gates. */
  bulkLoader(): BulkLoader {
    return {
      chunkSize: this.chunkSize,
      load: (index, data) => { this.check(0, 0); return this.io(async () => { this.gate(); return loadChunk(this.parts, index, data); }); },
      commit: () => { this.check(0, 0); return this.io(() => commitLoaded(this.parts)); },
    };
  }

  private get cache(): ChunkCache { return this.parts.cache; }
  private get manifest(): VolumeManifest { return this.parts.manifest; }
  private get store(): ObjectStore { return this.parts.store; }

  /** A reader (another agent holds the writer lease) is exported write-protected until it is promoted. */
  get readOnly(): boolean {
    return !this.parts.writer;
  }

  /** Backstore.onAccessChange: the write-protect state changed (a promotion). */
  onAccessChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  get role(): string {
    return this.lease.role;
  }

  private readonly notBroken = (): void => { if (this.broken) throw new BackstoreError(BackstoreErrorCode.IO, this.broken); };

  private io<T>(fn: () => Promise<T>): Promise<T> {
    return this.barrier.run(fn, this.notBroken);
  }

  /** A command that changes data: gated by the writer lease before and after, held back by a snapshot's flush point. */
  private mutate(fn: () => Promise<void>): Promise<void> {
    return this.barrier.run(async () => {
      await fn();
      this.gate(); // the lease may have lapsed while the write waited for cache space
    }, this.writeGate, true);
  }

  private readonly writeGate = (): void => { this.notBroken(); this.gate(); };

  /** Resolves once the holder of the lease has released it (clean close or hand-over). */
  whenLeaseReleased(o: { pollMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
    return this.lease.whenReleased(o);
  }

  /**
   * Makes this reader the writer without a restart (docs/writer-lease.md §Promotion): takes the next epoch
   * (force: even from a live holder), waits until a replaced live writer is fenced, then reopens the volume at
   * the newest root as its writer and tells the LUN the write-protect state changed.
   */
  async promote(o: { force?: boolean } = {}): Promise<PromoteOutcome> {
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    if (this.promoting) throw new Error(`a promotion is already under way (${this.promoting})`);
    if (this.parts.writer) throw new Error(`already the writer (epoch ${this.lease.epoch}, role ${this.lease.role})`);
    this.promoting = 'taking the writer lease';
    try {
      const t = await this.lease.promote(o);
      const wait = t.forced && t.previous ? this.lease.fenceWaitMs(t.previous) : 0;
      if (wait > 0) {
        this.promoting = `waiting ${wait} ms for ${t.previous!.holder} (epoch ${t.previous!.epoch}) to be fenced`;
        this.log.warn({ epoch: t.epoch, previous: t.previous!.holder, wait_ms: wait }, 'object volume: forced promotion; waiting for the old writer to be fenced');
        await sleep(wait);
      }
      this.promoting = 'reopening the volume as its writer';
      await this.swap();
      this.log.info({ epoch: t.epoch, previous: t.previous?.holder ?? null, forced: t.forced }, 'object volume: promoted to writer');
      for (const fn of this.listeners) fn();
      // Now the writer: the replica configured for this LUN starts (checked by the replicator, which retries).
      await this.sites.prepare(this.siteSpec, false).then((apply) => apply(),
        (e: Error) => this.log.warn({ err: e.message }, 'object volume: replication not started after the promotion'));
      return { epoch: t.epoch, previous: t.previous?.holder ?? null, forced: t.forced, fenceWaitMs: wait };
    } finally {
      this.promoting = null;
    }
  }

  /** Replaces the reader's parts by the writer's, with no command in flight; falls back to reading if that fails. */
  private swap(): Promise<void> {
    return this.barrier.exclusive(async () => {
      await this.parts.sweeping;
      // A reader's cache holds nothing dirty: closing it records its clean chunks, which the writer's cache keeps
      // where the newest root maps them identically (docs/writer-lease.md §Warm restart).
      await this.parts.cache.close(this.closeTimeoutMs);
      try {
        this.parts = await this.reopen(this.lease);
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'object volume: promotion could not reopen the volume; releasing the lease and reading again');
        await this.lease.release();
        try {
          this.parts = await this.reopen(this.lease);
        } catch (e2) {
          this.broken = `object volume could not be reopened after a failed promotion: ${(e2 as Error).message}`;
        }
        throw e;
      }
    });
  }

  /** Bandwidth schedules and the replica, changed on the running LU (agent/sites/object-sites.ts). */
  async reconfigure(so: Record<string, unknown>): Promise<() => void> {
    // A reader replicates nothing (the writer's agent does); it starts if this LUN is promoted.
    const apply = await this.sites.prepare(this.parts.writer ? so : { ...so, replica: undefined }, true);
    return () => { this.siteSpec = so; apply(); };
  }

  /** Writes are acknowledged only under a valid writer lease (docs/writer-lease.md §Senses). */
  private gate(): void {
    const l = this.lease;
    if (!this.parts.writer) throw new BackstoreError(BackstoreErrorCode.WRITE_PROTECTED, this.promoting ? `read-only while promoting: ${this.promoting}` : `read-only: the writer lease is held by ${l.heldBy ?? 'another agent'} (epoch ${l.epoch})`);
    if (l.role === 'reader') throw new BackstoreError(BackstoreErrorCode.WRITE_PROTECTED, `read-only: the writer lease is held by ${l.heldBy ?? 'another agent'} (epoch ${l.epoch})`);
    if (l.role === 'fenced') throw new BackstoreError(BackstoreErrorCode.WRITE_PROTECTED, l.lastError ?? 'writer lease lost');
    if (!l.writable()) throw new BackstoreError(BackstoreErrorCode.NOT_READY, `writer lease not renewed for ${Math.round(l.remainingMs())} ms left (${l.lastError ?? 'bucket unreachable'}); writes resume when it is`);
  }

  private check(offset: number, length: number): void {
    checkObjectRange(this.closed, offset, length, this.size);
  }

  /** Not an async function: a cache hit is served here, one settled promise and no barrier count (nothing stays in flight). */
  read(offset: number, length: number): Promise<Buffer> {
    try {
      this.check(offset, length);
      if (this.barrier.open) {
        this.notBroken();
        const hit = this.cache.cachedRead(offset, length);
        if (hit) return Promise.resolve(hit);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.io(() => this.cache.read(offset, length));
  }

  /** Not an async function: a write into a cached chunk goes to the batcher here, one promise (cache.writeCached). */
  write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    try {
      this.check(offset, length);
      if (this.barrier.open && !this.barrier.frozen) {
        this.writeGate();
        const p = this.cache.writeCached(offset, chunks, length);
        if (p) return this.barrier.track(p.then(this.gateAfter), true);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.mutate(() => this.cache.writePieces(offset, chunks, length));
  }

  private readonly gateAfter = (): void => this.gate(); // the lease may have lapsed while the write ran

  async flush(): Promise<void> {
    this.check(0, 0);
    if (!this.parts.writer) return; // nothing of a reader's is dirty
    return this.io(async () => {
      this.gate();
      await this.cache.flush();
      this.gate();
    });
  }

  /**
   * The admin's "sync": makes the cache durable locally, uploads every dirty byte and writes a root, as a 'flush'
   * job (returned at once; `done` settles when it ends). It fails once no dirty byte has left for closeTimeoutMs.
   */
  syncToBucket(): { job: number; done: Promise<void> } {
    this.check(0, 0);
    if (this.parts.writer) this.gate();
    const dirty = () => Number(this.cache.stats().dirty_bytes) || 0;
    const f = startFlushJob(`/backstores/object/${this.site.name}`, 'uploading', dirty);
    const run = async () => {
      if (!this.parts.writer) return; // nothing of a reader's is dirty
      await this.io(() => this.cache.flush());
      let last = dirty();
      let lastMove = Date.now();
      while (!(await this.cache.flusher.sync(1000))) {
        if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore closed during the flush');
        const now = dirty();
        if (now !== last) [last, lastMove] = [now, Date.now()];
        else if (Date.now() - lastMove > this.closeTimeoutMs) throw new BackstoreError(BackstoreErrorCode.NOT_READY, `flush made no progress for ${this.closeTimeoutMs} ms: ${this.cache.stats().last_error ?? 'bucket unreachable'}`);
      }
    };
    const done = run().then(() => { f.stop(); f.job.finish(); }, (e: unknown) => { f.stop(); f.job.fail(e); throw e; });
    done.catch(() => undefined); // the job carries the error; a caller that awaits `done` sees it too
    return { job: f.job.id, done };
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    return this.mutate(() => this.cache.unmap(offset, length));
  }

  /** Backstore.allocation at chunk granularity: a chunk neither cached nor in the manifest reads as zeros. */
  async allocation(offset: number, length: number): Promise<AllocationRange[]> {
    this.check(offset, length);
    return chunkAllocation(offset, length, this.chunkSize, (idx) => this.cache.allocated(idx));
  }

  async close(): Promise<void> {
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    this.closed = true;
    // The flusher's timers are unref'd so they never hold a running agent open; during close they are all
    // that is left once the portals are shut, so without a ref'd handle Node would exit mid-drain.
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await this.closeNow();
    } finally {
      clearInterval(keepAlive);
    }
  }

  private async closeNow(): Promise<void> {
    for (const fn of this.closeHooks) await fn().catch((e: Error) => this.log.warn({ err: e.message }, 'object volume: close hook failed'));
    await this.barrier.idle();
    await this.parts.sweeping;
    const dirty = Number(this.cache.stats().dirty_bytes) || 0;
    // The flush at stop is reported like any long work: an operator stopping an agent with GiB dirty sees it go.
    const f = dirty > 0 ? startFlushJob(`/backstores/object/${this.site.name}`, 'stopping', () => Number(this.cache.stats().dirty_bytes) || 0) : undefined;
    const drained = await this.cache.close(this.closeTimeoutMs).finally(() => f?.stop());
    if (drained) f?.job.finish();
    else f?.job.fail(`${this.cache.pending().bytes} bytes left in the journal for the next start`);
    // The replica gets the last root if it answers soon; otherwise it resumes from the bucket at the next start.
    await this.sites.close(drained ? 10_000 : 0);
    if (!drained) {
      const left = this.cache.pending();
      this.log.warn({ journaled_chunks: left.chunks, journaled_bytes: left.bytes, journaled_trims: left.trimmed, last_error: this.cache.stats().last_error },
        `object backstore closed after ${this.closeTimeoutMs} ms with ${left.chunks} chunks (${left.bytes} bytes) and ${left.trimmed} unmaps not yet in the bucket; they stay in the journal and upload at the next start`);
    }
    // Released only when everything is in the bucket: otherwise another agent could take over without it.
    if (drained) await this.lease.release();
    else this.log.warn({ epoch: this.lease.epoch }, 'object volume: writer lease kept until it expires (journaled data not uploaded)');
    await this.lease.destroy();
    this.bucket.destroy();
  }

  stats(): Record<string, number | string | null> {
    const c = this.bucket.counters;
    return {
      size: this.size,
      ...this.cache.stats(),
      bytes_uploaded: c.bytes_uploaded,
      bytes_downloaded: c.bytes_downloaded,
      put_count: c.put_count,
      get_count: c.get_count,
      delete_count: c.delete_count,
      list_count: c.list_count,
      put_errors: c.put_errors,
      get_errors: c.get_errors,
      delete_errors: c.delete_errors,
      list_errors: c.list_errors,
      manifest_generation: this.manifest.generation,
      manifest_epoch: this.manifest.epoch,
      format_version: this.manifest.formatVersion,
      chunks_stored: this.manifest.chunkCount,
      lease_role: this.lease.role,
      ...(this.promoting ? { promotion: this.promoting } : {}),
      lease_epoch: this.lease.epoch,
      ...(this.lease.heldBy ? { lease_holder: this.lease.heldBy } : {}),
      ...(this.lease.lastError ? { last_error: this.lease.lastError } : {}),
      segments_stored: this.manifest.segments.size,
      segments_uploaded: this.cache.flusher.segmentsUploaded,
      chunk_objects_uploaded: this.cache.flusher.chunksUploaded,
      compactions: this.cache.flusher.compactions,
      compacted_bytes: this.store.compactedBytes,
      checksum_errors: this.store.codec.corrupt,
      ...Object.assign({}, ...this.statsHooks.map((fn) => fn())) as Record<string, string>,
      ...this.sites.stats(),
    };
  }
}
