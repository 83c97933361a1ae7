// Backstore plugin 'object' (docs/bucket-format.md): a volume kept in an S3 bucket behind the bounded local
// block cache (agent/cache/). The bucket holds a descriptor, immutable chunk objects and paged manifests.
import { join } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { silentLogger, type Logger } from '../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore } from './backstore.js';
import { ChunkCache } from '../cache/chunk-cache.js';
import { chunkAllocation } from './allocation.js';
import { Bucket } from './object/bucket.js';
import { checkDescriptor, openVolume } from './object/volume.js';
import type { VolumeManifest } from './object/manifest.js';
import { DEFAULT_CHUNK_SIZE, decodeDescriptor, keys, normalizePrefix, parseJson } from './object/format.js';
import { WriterLease } from './object/lease.js';
import { readJournal } from '../cache/journal.js';
import { DeferredObjectBackstore, localCopies } from './object/deferred.js';
import { ObjectStore } from './object/store.js';
import { keyEnvName, loadVolumeKey } from './object/crypto.js';

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
  private promoting: string | null = null;
  /** Set when a failed promotion could not reopen the volume at all: every command then fails with it. */
  private broken: string | null = null;
  private readonly listeners: Array<() => void> = [];
  private readonly closeHooks: Array<() => Promise<void>> = [];
  private readonly statsHooks: Array<() => Record<string, string>> = [];
  /** I/O barrier for a promotion's swap of the volume parts. */
  private inflight = 0;
  private paused: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(readonly size: number, readonly writeBack: boolean, private parts: VolumeParts, private readonly bucket: Bucket,
    private readonly closeTimeoutMs: number, private readonly log: Logger, private readonly chunkSize: number,
    private readonly lease: WriterLease, private readonly reopen: (lease: WriterLease) => Promise<VolumeParts>,
    private readonly site: { prefix: string; readTimeoutMs: number; readListeners: Array<(index: number) => void> }) {}

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

  /** Waits out a promotion's swap, then counts the command in. */
  private async enter(): Promise<void> {
    while (this.paused) await this.paused;
    if (this.broken) throw new BackstoreError(BackstoreErrorCode.IO, this.broken);
    this.inflight++;
  }

  private leave(): void {
    if (--this.inflight === 0) this.drained?.();
  }

  private async io<T>(fn: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await fn();
    } finally {
      this.leave();
    }
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
      return { epoch: t.epoch, previous: t.previous?.holder ?? null, forced: t.forced, fenceWaitMs: wait };
    } finally {
      this.promoting = null;
    }
  }

  /** Replaces the reader's parts by the writer's, with no command in flight; falls back to reading if that fails. */
  private async swap(): Promise<void> {
    let resume!: () => void;
    this.paused = new Promise((r) => (resume = r));
    try {
      if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = null;
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
    } finally {
      this.paused = null;
      resume();
    }
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
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BackstoreError(BackstoreErrorCode.RANGE, `range ${offset}+${length} outside 0..${this.size}`);
    }
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
      await this.cache.write(offset, chunks);
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

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    return this.io(async () => {
      this.gate();
      await this.cache.unmap(offset, length);
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
    while (this.paused) await this.paused;
    await this.parts.sweeping;
    const drained = await this.cache.close(this.closeTimeoutMs);
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

async function openNow(spec: ObjectBackstoreSpec, ctx: { stateDir: string; log?: Logger }): Promise<Backstore> {
  const log = (ctx.log ?? silentLogger).child({ backstore: spec.name });
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
    const chunk0 = d?.chunk_size ?? DEFAULT_CHUNK_SIZE;
    if (cacheSize < 2 * chunk0) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: cache_size must be at least ${2 * chunk0} bytes (two chunks)`);
    const holder = await holderId(cacheDir, spec.name);
    lease = await WriterLease.open({
      bucket: spec.bucket, endpoint: spec.endpoint, region: spec.region, forcePathStyle: spec.force_path_style, prefix: prefix0,
      holder, leaseMs, settleMs, timeoutMs: readTimeoutMs, log,
    });
    await refuseOrphans(cacheDir, holder, lease);
    // Everything below is opened again, under the new role, when a reader is promoted (agent/sites/promote.ts).
    let chunkSize = chunk0;
    const readListeners: Array<(index: number) => void> = [];
    const openParts = async (writer: WriterLease): Promise<VolumeParts> => {
      const asWriter = writer.role === 'writer';
      const vol = await openVolume({ bucket, prefix: spec.prefix, size, wwn: spec.wwn, timeoutMs: readTimeoutMs, retain: num(spec.retain_manifests, 'retain_manifests', 2) || 1, log, key, keyHint,
        epoch: asWriter ? writer.epoch : undefined });
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
    const parts = await openParts(lease);
    return new ObjectBackstore(size, spec.write_back ?? true, parts, bucket, num(spec.close_timeout_ms, 'close_timeout_ms', 60_000), log, chunkSize, lease, openParts,
      { prefix: prefix0, readTimeoutMs, readListeners });
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
