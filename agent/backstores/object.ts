// Backstore plugin 'object' (docs/bucket-format.md): a volume kept in an S3 bucket behind the bounded local
// block cache (agent/cache/). The bucket holds a descriptor, immutable chunk objects and paged manifests.
import { join } from 'node:path';
import { silentLogger, type Logger } from '../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore } from './backstore.js';
import { ChunkCache } from '../cache/chunk-cache.js';
import { chunkAllocation } from './allocation.js';
import { Bucket } from './object/bucket.js';
import { openVolume } from './object/volume.js';
import type { VolumeManifest } from './object/manifest.js';
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
  private closed = false;

  constructor(readonly size: number, readonly writeBack: boolean, private readonly cache: ChunkCache, private readonly bucket: Bucket,
    private readonly manifest: VolumeManifest, private readonly closeTimeoutMs: number, private readonly sweeping: Promise<unknown>,
    private readonly log: Logger, private readonly chunkSize: number, private readonly store: ObjectStore) {}

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
    await this.cache.write(offset, chunks);
  }

  async flush(): Promise<void> {
    this.check(0, 0);
    await this.cache.flush();
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    await this.cache.unmap(offset, length);
  }

  /** Backstore.allocation at chunk granularity: a chunk neither cached nor in the manifest reads as zeros. */
  async allocation(offset: number, length: number): Promise<AllocationRange[]> {
    this.check(offset, length);
    return chunkAllocation(offset, length, this.chunkSize, (idx) => this.cache.allocated(idx));
  }

  async close(): Promise<void> {
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    this.closed = true;
    await this.sweeping;
    const drained = await this.cache.close(this.closeTimeoutMs);
    if (!drained) this.log.warn(this.cache.stats(), 'object backstore closed with data not yet uploaded; it is journaled locally and uploads at the next start');
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
      segments_stored: this.manifest.segments.size,
      segments_uploaded: this.cache.flusher.segmentsUploaded,
      chunk_objects_uploaded: this.cache.flusher.chunksUploaded,
      compactions: this.cache.flusher.compactions,
      compacted_bytes: this.store.compactedBytes,
      checksum_errors: this.store.codec.corrupt,
    };
  }
}

export async function openObjectBackstore(spec: ObjectBackstoreSpec, ctx: { stateDir: string; log?: Logger }): Promise<Backstore> {
  const log = (ctx.log ?? silentLogger).child({ backstore: spec.name });
  if (!spec.name || /[/\\]|^\.\.?$/.test(spec.name)) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: bad name ${JSON.stringify(spec.name)}`);
  if (!spec.bucket) throw new BackstoreError(BackstoreErrorCode.IO, 'object backstore: bucket is required');
  const size = num(spec.size, 'size');
  if (size === 0 || size % 512) throw new BackstoreError(BackstoreErrorCode.IO, 'object backstore: size must be a positive multiple of 512');
  const cacheSize = num(spec.cache_size, 'cache_size');
  const readTimeoutMs = num(spec.read_timeout_ms, 'read_timeout_ms', 10_000);
  const bucket = new Bucket({ bucket: spec.bucket, endpoint: spec.endpoint, region: spec.region, forcePathStyle: spec.force_path_style,
    connectTimeoutMs: Math.min(3000, readTimeoutMs) });
  try {
    const key = await loadVolumeKey(spec.name, spec.encryption_key_file);
    const keyHint = spec.encryption_key_file ? `encryption_key_file ${spec.encryption_key_file}` : `environment ${keyEnvName(spec.name)} or encryption_key_file`;
    const vol = await openVolume({ bucket, prefix: spec.prefix, size, wwn: spec.wwn, timeoutMs: readTimeoutMs, retain: num(spec.retain_manifests, 'retain_manifests', 2) || 1, log, key, keyHint });
    const chunkSize = vol.descriptor.chunk_size;
    if (cacheSize < 2 * chunkSize) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: cache_size must be at least ${2 * chunkSize} bytes (two chunks)`);
    const { manifest, prefix } = vol;
    const remote = new ObjectStore(bucket, prefix, manifest, chunkSize, key, log);
    const cache = await ChunkCache.open({
      dir: spec.cache_dir ?? join(ctx.stateDir, 'cache', spec.name), size, chunkSize, capacity: cacheSize,
      writeBack: spec.write_back ?? true, remote, readTimeoutMs,
      uploadConcurrency: Math.max(1, num(spec.upload_concurrency, 'upload_concurrency', 4)),
      retryBaseMs: 100, retryMaxMs: Math.max(100, num(spec.retry_max_ms, 'retry_max_ms', 5000)),
      commitIntervalMs: Math.max(50, num(spec.commit_interval_ms, 'commit_interval_ms', 2000)),
      uploadDelayMs: num(spec.upload_delay_ms, 'upload_delay_ms', 200),
      readAhead: num(spec.read_ahead, 'read_ahead', 2), log,
    });
    const sweeping = manifest.sweep().then((n) => { if (n) log.info({ deleted: n }, 'object volume: swept unreferenced objects'); },
      (err: Error) => log.warn({ err: err.message }, 'object volume: sweep failed'));
    return new ObjectBackstore(size, spec.write_back ?? true, cache, bucket, manifest, num(spec.close_timeout_ms, 'close_timeout_ms', 60_000), sweeping, log, chunkSize, remote);
  } catch (e) {
    bucket.destroy();
    if (e instanceof BackstoreError) throw e;
    const err = e as Error & { $metadata?: unknown; code?: string };
    const fromBucket = err.$metadata !== undefined || err.name === 'AbortError' || err.name === 'TimeoutError' || /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|socket/i.test(String(err.code ?? err.message));
    throw new BackstoreError(fromBucket ? BackstoreErrorCode.NOT_READY : BackstoreErrorCode.IO, `object backstore ${spec.name}: ${err.message}`, { cause: e });
  }
}
