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
import { ObjectSites } from '../sites/object-sites.js';

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

class ObjectBackstore implements Backstore {
  readonly plugin = 'object' as const;
  readonly thinProvisioned = true;
  /** A reader (another agent holds the writer lease) is exported write-protected. */
  readonly readOnly: boolean;
  private closed = false;

  constructor(readonly size: number, readonly writeBack: boolean, private readonly cache: ChunkCache, private readonly bucket: Bucket,
    private readonly manifest: VolumeManifest, private readonly closeTimeoutMs: number, private readonly sweeping: Promise<unknown>,
    private readonly log: Logger, private readonly chunkSize: number, private readonly lease: WriterLease, private readonly store: ObjectStore,
    readonly sites: ObjectSites) {
    this.readOnly = lease.role !== 'writer';
  }

  /** Bandwidth schedules and the replica, changed on the running LU (agent/sites/object-sites.ts). */
  reconfigure(so: Record<string, unknown>): Promise<() => void> {
    return this.sites.prepare(this.lease.role === 'writer' ? so : { ...so, replica: undefined }, true);
  }

  /** Writes are acknowledged only under a valid writer lease (docs/writer-lease.md §Senses). */
  private gate(): void {
    const l = this.lease;
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
    return this.cache.read(offset, length);
  }

  async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    this.check(offset, length);
    this.gate();
    await this.cache.write(offset, chunks);
    this.gate(); // the lease may have lapsed while the write waited for cache space
  }

  async flush(): Promise<void> {
    this.check(0, 0);
    if (this.lease.role === 'reader') return; // nothing of a reader's is dirty
    this.gate();
    await this.cache.flush();
    this.gate();
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    this.gate();
    await this.cache.unmap(offset, length);
    this.gate();
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
    await this.sweeping;
    const drained = await this.cache.close(this.closeTimeoutMs);
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
      manifest_generation: this.manifest.generation,
      manifest_epoch: this.manifest.epoch,
      format_version: this.manifest.formatVersion,
      chunks_stored: this.manifest.chunkCount,
      lease_role: this.lease.role,
      lease_epoch: this.lease.epoch,
      ...(this.lease.heldBy ? { lease_holder: this.lease.heldBy } : {}),
      ...(this.lease.lastError ? { last_error: this.lease.lastError } : {}),
      segments_stored: this.manifest.segments.size,
      segments_uploaded: this.cache.flusher.segmentsUploaded,
      chunk_objects_uploaded: this.cache.flusher.chunksUploaded,
      compactions: this.cache.flusher.compactions,
      compacted_bytes: this.store.compactedBytes,
      checksum_errors: this.store.codec.corrupt,
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
    const vol = await openVolume({ bucket, prefix: spec.prefix, size, wwn: spec.wwn, timeoutMs: readTimeoutMs, retain: num(spec.retain_manifests, 'retain_manifests', 2) || 1, log, key, keyHint,
      epoch: lease.role === 'writer' ? lease.epoch : undefined });
    const chunkSize = vol.descriptor.chunk_size;
    if (cacheSize < 2 * chunkSize) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: cache_size must be at least ${2 * chunkSize} bytes (two chunks)`);
    const { manifest, prefix } = vol;
    const writer = lease;
    const remote = new ObjectStore(bucket, prefix, manifest, chunkSize, key, log, {
      // An upload by a fenced writer would only be garbage; a root or GC after a rival could have taken over
      // would shadow or delete its epoch's objects.
      mayUpload: () => writer.role === 'fenced' ? (writer.lastError ?? 'writer lease lost') : null,
      mayMutate: () => writer.mayMutate(readTimeoutMs),
      role: () => writer.role,
    });
    let cacheRef: ChunkCache | undefined;
    const sites = new ObjectSites({ name: spec.name, bucket, bucketName: spec.bucket, prefix, endpoint: spec.endpoint, region: spec.region,
      forcePathStyle: spec.force_path_style, chunkSize, timeoutMs: readTimeoutMs, log,
      primaryRpoMs: () => Number(cacheRef?.stats().oldest_dirty_age_ms) || 0 });
    // Checked before the cache opens, so a refused replica or schedule leaves nothing running. A reader
    // (another agent holds the writer lease) replicates nothing: the writer's agent does.
    const siteSpec = spec as unknown as Record<string, unknown>;
    const applySites = await sites.prepare(writer.role === 'writer' ? siteSpec : { ...siteSpec, replica: undefined }, !ctx.startup);
    const cache = cacheRef = await ChunkCache.open({
      dir: cacheDir, size, chunkSize, capacity: cacheSize,
      writeBack: spec.write_back ?? true, remote, readTimeoutMs,
      uploadConcurrency: Math.max(1, num(spec.upload_concurrency, 'upload_concurrency', 4)),
      retryBaseMs: 100, retryMaxMs: Math.max(100, num(spec.retry_max_ms, 'retry_max_ms', 5000)),
      commitIntervalMs: Math.max(50, num(spec.commit_interval_ms, 'commit_interval_ms', 2000)),
      uploadDelayMs: num(spec.upload_delay_ms, 'upload_delay_ms', 200),
      readAhead: num(spec.read_ahead, 'read_ahead', 2), writeTimeoutMs: num(spec.write_timeout_ms, 'write_timeout_ms', 20_000), log,
    });
    // Only the writer sweeps: a reader would delete what the writer has uploaded but not yet named in a root.
    const sweeping = !writer.mayMutate(readTimeoutMs) ? Promise.resolve() : manifest.sweep().then((n) => { if (n) log.info({ deleted: n }, 'object volume: swept unreferenced objects'); },
      (err: Error) => log.warn({ err: err.message }, 'object volume: sweep failed'));
    const b = new ObjectBackstore(size, spec.write_back ?? true, cache, bucket, manifest, num(spec.close_timeout_ms, 'close_timeout_ms', 60_000), sweeping, log, chunkSize, writer, remote, sites);
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
