// Backstore plugin 'object' (docs/bucket-format.md): a volume kept in an S3 bucket behind the bounded local
// block cache (agent/cache/). The bucket holds a descriptor, immutable chunk objects and paged manifests.
import { join } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { silentLogger, type Logger } from '../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore, checkObjectRange } from './backstore.js';
import { ChunkCache } from '../cache/chunk-cache.js';
import { chunkAllocation } from './allocation.js';
import { Bucket } from './object/bucket.js';
import { checkDescriptor, openVolume } from './object/volume.js';
import type { VolumeManifest } from './object/manifest.js';
import { DEFAULT_CHUNK_SIZE, decodeDescriptor, keys, normalizePrefix, parseJson, type VolumeDescriptor } from './object/format.js';
import { WriterLease } from './object/lease.js';
import { readJournal } from '../cache/journal.js';
import { DeferredObjectBackstore, localCopies } from './object/deferred.js';
import { ObjectStore } from './object/store.js';
import { IoBarrier } from './object/io-barrier.js';
import { keyEnvName, loadVolumeKey } from './object/crypto.js';
import { ObjectSites } from '../sites/object-sites.js';
import { VolumeSnapshots, WriteBarrier } from './object/snapshots.js';
import { checkCloneSource, materializeClone, parseSource, type CloneSource } from './object/clone.js';
import { openSnapshotExport } from './object/snapshot-export.js';
import { startFlushJob } from './object/flush-job.js';

export interface ObjectBackstoreSpec {
  plugin: 'object';
  name: string;
  size: number;
  wwn?: string;
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  force_path_style?: boolean;
  cache_dir?: string;
  cache_size: number;
  write_back?: boolean;
  /** Tuning (all optional): bound on a read that needs the bucket, default 10 000 ms. */
  read_timeout_ms?: number;
  /** Parallel chunk uploads, default 4. */
  upload_concurrency?: number;
  /** Manifest generations kept before their objects are collected, default 2. */
  retain_manifests?: number;
  /** Longest gap between manifests while uploads continue, default 2000 ms. */
  commit_interval_ms?: number;
  /** Upper bound of the retry backoff, default 5000 ms. */
  retry_max_ms?: number;
  /** How long close() keeps trying to upload before leaving dirty data to the next start, default 60 000 ms. */
  close_timeout_ms?: number;
  /** A dirty chunk is uploaded once left unwritten this long (rewrites coalesce), default 200 ms. */
  upload_delay_ms?: number;
  /** Chunks read ahead for sequential readers, default 2. */
  read_ahead?: number;
  /** Longest a write waits for cache space before failing with a retryable NOT READY, default 20 000 ms. */
  write_timeout_ms?: number;
  /** Writer lease duration (docs/writer-lease.md), default 60 000 ms. */
  lease_ms?: number;
  /** Settle delay of the lease fallback for providers without conditional writes, default 1000 ms. */
  lease_settle_ms?: number;
  /**
   * Client-side encryption (AES-256-GCM): a file holding the volume key as 64 hex digits. Without it the key is
   * taken from OUTPOST_VOLUME_KEY_<NAME> when set. Only the path is kept in the configuration, never the key.
   */
  encryption_key_file?: string;
  /** Longest a snapshot holds new writes back while what was written before it uploads, default 15 000 ms. */
  snapshot_timeout_ms?: number;
  /** A clone (or with readonly, an export) of a snapshot: `<bucket prefix>@<snapshot>` in the same bucket. */
  source?: string;
  /** With source: export the snapshot itself write-protected (no lease, nothing written to the bucket). */
  readonly?: boolean;
}

function num(v: unknown, what: string, dflt?: number): number {
  if (v === undefined || v === null || v === '') {
    if (dflt === undefined) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: ${what} is required`);
    return dflt;
  }
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: ${what} must be a non-negative integer`);
  return n;
}

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
  /** Snapshots hold writes back at their flush point. */
  private readonly writes = new WriteBarrier();
  readonly snapshots: VolumeSnapshots;
  private promoting: string | null = null;
  /** Set when a failed promotion could not reopen the volume at all: every command then fails with it. */
  private broken: string | null = null;
  private readonly listeners: Array<() => void> = [];
  private readonly closeHooks: Array<() => Promise<void>> = [];
  private readonly statsHooks: Array<() => Record<string, string>> = [];
  /** Commands in flight, held back while a promotion swaps the volume parts. */
  private readonly barrier = new IoBarrier();

  constructor(readonly size: number, readonly writeBack: boolean, private parts: VolumeParts, private readonly bucket: Bucket,
    private readonly closeTimeoutMs: number, private readonly log: Logger, private readonly chunkSize: number,
    private readonly lease: WriterLease, private readonly reopen: (lease: WriterLease) => Promise<VolumeParts>,
    private readonly site: { name: string; prefix: string; readTimeoutMs: number; readListeners: Array<(index: number) => void> },
    snap: { timeoutMs: number; flushTimeoutMs: number; what: string }, readonly sites: ObjectSites, private siteSpec: Record<string, unknown>) {
    this.snapshots = new VolumeSnapshots(bucket, site.prefix, () => this.parts, lease, this.writes, { ...snap, size });
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

  private io<T>(fn: () => Promise<T>): Promise<T> {
    return this.barrier.run(fn, () => { if (this.broken) throw new BackstoreError(BackstoreErrorCode.IO, this.broken); });
  }

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

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    return this.io(() => this.cache.read(offset, length));
  }

  async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    this.check(offset, length);
    return this.io(async () => {
      this.gate();
      await this.writes.enter();
      try {
        await this.cache.write(offset, chunks);
      } finally {
        this.writes.leave();
      }
      this.gate(); // the lease may have lapsed while the write waited for cache space
    });
  }

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
    return this.io(async () => {
      this.gate();
      await this.writes.enter();
      try {
        await this.cache.unmap(offset, length);
      } finally {
        this.writes.leave();
      }
      this.gate();
    });
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

/**
 * Opens the volume. At agent start (ctx.startup) a bucket that cannot be reached does not keep the LUN from
 * being exported: it serves what the local cache holds and opens the volume once the bucket answers.
 */
export async function openObjectBackstore(spec: ObjectBackstoreSpec, ctx: { stateDir: string; log?: Logger; startup?: boolean }): Promise<Backstore> {
  try {
    return await openNow(spec, ctx);
  } catch (e) {
    if (!ctx.startup || !(e instanceof BackstoreError) || e.code !== BackstoreErrorCode.NOT_READY) throw e;
    const log = (ctx.log ?? silentLogger).child({ backstore: spec.name });
    log.warn({ err: e.message }, 'object volume: bucket unreachable at start; exporting the LUN with what the cache holds and retrying');
    const local = await localCopies(spec.cache_dir ?? join(ctx.stateDir, 'cache', spec.name));
    return new DeferredObjectBackstore(num(spec.size, 'size'), spec.write_back ?? true, local, () => openNow(spec, ctx), e.message,
      Math.max(500, num(spec.retry_max_ms, 'retry_max_ms', 5000)), log);
  }
}

async function openNow(spec: ObjectBackstoreSpec, ctx: { stateDir: string; log?: Logger; startup?: boolean }): Promise<Backstore> {
  const log = (ctx.log ?? silentLogger).child({ backstore: spec.name });
  if (spec.readonly) {
    if (!spec.source) throw new BackstoreError(BackstoreErrorCode.IO, 'object backstore: readonly=true exports a snapshot; give source=VOLUME@SNAPSHOT');
    return openSnapshotExport(spec, log);
  }
  if (!spec.name || /[/\\]|^\.\.?$/.test(spec.name)) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: bad name ${JSON.stringify(spec.name)}`);
  if (!spec.bucket) throw new BackstoreError(BackstoreErrorCode.IO, 'object backstore: bucket is required');
  const size = num(spec.size, 'size');
  if (size === 0 || size % 512) throw new BackstoreError(BackstoreErrorCode.IO, 'object backstore: size must be a positive multiple of 512');
  const cacheSize = num(spec.cache_size, 'cache_size');
  const readTimeoutMs = num(spec.read_timeout_ms, 'read_timeout_ms', 10_000);
  const leaseMs = num(spec.lease_ms, 'lease_ms', 60_000);
  const settleMs = num(spec.lease_settle_ms, 'lease_settle_ms', 1000);
  // A root write or delete begun under the lease must end (by read_timeout_ms) before the lease could pass on.
  if (leaseMs < 4 * settleMs || leaseMs < 2 * readTimeoutMs) {
    throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: lease_ms (${leaseMs}) must be at least 4 × lease_settle_ms and 2 × read_timeout_ms`);
  }
  const cacheDir = spec.cache_dir ?? join(ctx.stateDir, 'cache', spec.name);
  const bucket = new Bucket({ bucket: spec.bucket, endpoint: spec.endpoint, region: spec.region, forcePathStyle: spec.force_path_style,
    connectTimeoutMs: Math.min(3000, readTimeoutMs) });
  let lease: WriterLease | undefined;
  try {
    const prefix0 = normalizePrefix(spec.prefix);
    // Bad configuration is refused before the lease is touched, so a failed open changes nothing in the bucket.
    const key = await loadVolumeKey(spec.name, spec.encryption_key_file);
    const keyHint = spec.encryption_key_file ? `encryption_key_file ${spec.encryption_key_file}` : `environment ${keyEnvName(spec.name)} or encryption_key_file`;
    const existing = await bucket.get(keys.descriptor(prefix0), readTimeoutMs);
    const d = existing ? decodeDescriptor(parseJson(existing, keys.descriptor(prefix0))) : undefined;
    if (d) checkDescriptor(d, `bucket volume s3://${spec.bucket}/${keys.descriptor(prefix0)}`, { size, key, keyHint, log });
    // A clone is checked against its source before anything is written to either prefix.
    let cloneFrom: CloneSource | undefined;
    if (spec.source && d) {
      const want = parseSource(spec.source);
      if (d.origin?.prefix !== want.prefix || d.origin?.snapshot !== want.snapshot) {
        throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: s3://${spec.bucket}/${prefix0} already holds a volume that is not a clone of ${spec.source}; use a new prefix`);
      }
    } else if (spec.source) {
      cloneFrom = await checkCloneSource(bucket, spec.source, { prefix: prefix0, size, key, keyHint, timeoutMs: readTimeoutMs, log })
        .catch((e: Error) => { throw (e as { $metadata?: unknown }).$metadata ? e : new BackstoreError(BackstoreErrorCode.IO, `object backstore ${spec.name}: ${e.message}`); });
    }
    const chunk0 = d?.chunk_size ?? cloneFrom?.descriptor.chunk_size ?? DEFAULT_CHUNK_SIZE;
    if (cacheSize < 2 * chunk0) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: cache_size must be at least ${2 * chunk0} bytes (two chunks)`);
    const holder = await holderId(cacheDir, spec.name);
    lease = await WriterLease.open({
      bucket: spec.bucket, endpoint: spec.endpoint, region: spec.region, forcePathStyle: spec.force_path_style, prefix: prefix0,
      holder, leaseMs, settleMs, timeoutMs: readTimeoutMs, log,
    });
    await refuseOrphans(cacheDir, holder, lease);
    let bsRef: ObjectBackstore | undefined;
    const sites = new ObjectSites({ name: spec.name, bucket, bucketName: spec.bucket, prefix: prefix0, endpoint: spec.endpoint, region: spec.region,
      forcePathStyle: spec.force_path_style, chunkSize: chunk0, timeoutMs: readTimeoutMs, log, primaryRpoMs: () => bsRef?.primaryRpoMs() ?? 0 });
    // A bad schedule is refused before the cache opens. A replica from the configuration is checked by the
    // replicator itself (it needs this volume's descriptor, written below), which retries and reports; the
    // shell's `replica create` checks before anything changes (reconfigure). A reader replicates nothing.
    const siteSpec = spec as unknown as Record<string, unknown>;
    const applySites = await sites.prepare(lease.role === 'writer' ? siteSpec : { ...siteSpec, replica: undefined }, false);
    // Everything below is opened again, under the new role, when a reader is promoted (agent/sites/promote.ts).
    if (cloneFrom) {
      if (lease.role !== 'writer') throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: another agent (${lease.heldBy ?? 'unknown'}) holds s3://${spec.bucket}/${prefix0}`);
      await materializeClone(bucket, prefix0, cloneFrom, { size, epoch: lease.epoch, wwn: spec.wwn, timeoutMs: readTimeoutMs, log });
    }
    let chunkSize = chunk0;
    const readListeners: Array<(index: number) => void> = [];
    const openParts = async (writer: WriterLease, descriptor?: VolumeDescriptor): Promise<VolumeParts> => {
      const asWriter = writer.role === 'writer';
      const vol = await openVolume({ bucket, prefix: spec.prefix, size, wwn: spec.wwn, timeoutMs: readTimeoutMs, retain: num(spec.retain_manifests, 'retain_manifests', 2) || 1, log, key, keyHint,
        epoch: asWriter ? writer.epoch : undefined, descriptor });
      chunkSize = vol.descriptor.chunk_size;
      if (cacheSize < 2 * chunkSize) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: cache_size must be at least ${2 * chunkSize} bytes (two chunks)`);
      const { manifest, prefix } = vol;
      const remote = new ObjectStore(bucket, prefix, manifest, chunkSize, key, log, {
        // An upload by a fenced writer would only be garbage; a root or GC after a rival could have taken over
        // would shadow or delete its epoch's objects.
        mayUpload: () => writer.role === 'fenced' ? (writer.lastError ?? 'writer lease lost') : null,
        mayMutate: () => writer.mayMutate(readTimeoutMs),
        role: () => writer.role,
      });
      const cache = await ChunkCache.open({
        dir: cacheDir, size, chunkSize, capacity: cacheSize,
        writeBack: spec.write_back ?? true, remote, readTimeoutMs,
        uploadConcurrency: Math.max(1, num(spec.upload_concurrency, 'upload_concurrency', 4)),
        retryBaseMs: 100, retryMaxMs: Math.max(100, num(spec.retry_max_ms, 'retry_max_ms', 5000)),
        commitIntervalMs: Math.max(50, num(spec.commit_interval_ms, 'commit_interval_ms', 2000)),
        uploadDelayMs: num(spec.upload_delay_ms, 'upload_delay_ms', 200),
        readAhead: num(spec.read_ahead, 'read_ahead', 2), writeTimeoutMs: num(spec.write_timeout_ms, 'write_timeout_ms', 20_000), log,
        onRead: (i) => { for (const fn of readListeners) fn(i); },
      });
      // Only the writer sweeps: a reader would delete what the writer has uploaded but not yet named in a root.
      const sweeping = !writer.mayMutate(readTimeoutMs) ? Promise.resolve() : manifest.sweep().then((n) => { if (n) log.info({ deleted: n }, 'object volume: swept unreferenced objects'); },
        (err: Error) => log.warn({ err: err.message }, 'object volume: sweep failed'));
      return { cache, manifest, store: remote, sweeping, writer: asWriter };
    };
    // A reader opens on the descriptor read above; a writer reads it again, now that it holds the lease.
    const parts = await openParts(lease, lease.role === 'writer' ? undefined : d);
    const b = bsRef = new ObjectBackstore(size, spec.write_back ?? true, parts, bucket, num(spec.close_timeout_ms, 'close_timeout_ms', 60_000), log, chunkSize, lease, openParts,
      { name: spec.name, prefix: prefix0, readTimeoutMs, readListeners },
      { timeoutMs: readTimeoutMs, flushTimeoutMs: num(spec.snapshot_timeout_ms, 'snapshot_timeout_ms', 15_000), what: `object volume ${spec.name}` }, sites, siteSpec);
    applySites();
    return b;
  } catch (e) {
    bucket.destroy();
    await lease?.destroy();
    if (e instanceof BackstoreError) throw e;
    const err = e as Error & { $metadata?: unknown; code?: string };
    const fromBucket = err.$metadata !== undefined || err.name === 'AbortError' || err.name === 'TimeoutError' || /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|socket/i.test(String(err.code ?? err.message));
    throw new BackstoreError(fromBucket ? BackstoreErrorCode.NOT_READY : BackstoreErrorCode.IO, `object backstore ${spec.name}: ${err.message}`, { cause: e });
  }
}

/** This cache's identity in lease.json, kept in the cache dir: the journal there is what a writer must not lose. */
async function holderId(cacheDir: string, name: string): Promise<string> {
  const path = join(cacheDir, 'lease-holder');
  try {
    const id = (await readFile(path, 'utf8')).trim();
    if (id) return id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(cacheDir, { recursive: true });
  const id = `${hostname()}/${name}/${randomBytes(8).toString('hex')}`;
  await writeFile(path, id + '\n', { mode: 0o600 });
  return id;
}

/**
 * Journaled writes belong to the epoch that acknowledged them. If another holder wrote the volume since (or
 * holds it now), replaying them would overwrite newer data: refuse, keep the journal, and say how to discard it.
 */
async function refuseOrphans(cacheDir: string, holder: string, lease: WriterLease): Promise<void> {
  const j = await readJournal(cacheDir);
  const pending = (j?.dirty.length ?? 0) + (j?.trimmed.length ?? 0);
  if (pending === 0) return;
  const other = lease.role === 'writer' && lease.previous && lease.previous.holder !== holder ? lease.previous : null;
  if (lease.role === 'writer' && !other) return;
  const who = lease.role === 'writer' ? `${other!.holder} wrote epoch ${other!.epoch} since` : `the writer lease is held by ${lease.heldBy ?? 'another agent'} (epoch ${lease.epoch})`;
  if (lease.role === 'writer') await lease.release();
  throw new BackstoreError(BackstoreErrorCode.IO, `cache ${cacheDir} holds ${pending} journaled chunks not in the bucket, but ${who}; `
    + `they are kept; move ${cacheDir} aside to open the volume without them`);
}
