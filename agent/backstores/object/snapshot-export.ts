// docs/bucket-format.md §Snapshot, clone (read-only export): a snapshot served as a write-protected LUN straight
// from its retained root — no writer lease, no cache, nothing written to the bucket — for backups and DR tests.
import type { Logger } from '../../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type Backstore, checkObjectRange } from '../backstore.js';
import { Bucket } from './bucket.js';
import { VolumeManifest } from './manifest.js';
import { ObjectStore } from './store.js';
import { checkCloneSource } from './clone.js';
import { keyEnvName, loadVolumeKey } from './crypto.js';
import { keys } from './format.js';
import type { ObjectBackstoreSpec } from '../object.js';

class SnapshotExport implements Backstore {
  readonly plugin = 'object' as const;
  readonly thinProvisioned = true;
  readonly writeBack = false;
  readonly readOnly = true;
  private closed = false;
  reads = 0;

  constructor(readonly size: number, private readonly bucket: Bucket, private readonly store: ObjectStore, private readonly chunkSize: number,
    private readonly timeoutMs: number, private readonly generation: number, private readonly source: string) {}

  private check(offset: number, length: number): void {
    checkObjectRange(this.closed, offset, length, this.size);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    const out = Buffer.allocUnsafe(length);
    const jobs: Promise<void>[] = [];
    for (let pos = offset; pos < offset + length;) {
      const index = Math.floor(pos / this.chunkSize);
      const off = pos - index * this.chunkSize;
      const len = Math.min(this.chunkSize - off, offset + length - pos);
      const at = pos - offset;
      jobs.push(this.store.read(index, off, len, this.timeoutMs).then((b) => { b.copy(out, at); }));
      pos += len;
    }
    try {
      await Promise.all(jobs);
    } catch (e) {
      if (e instanceof BackstoreError) throw e;
      throw new BackstoreError(BackstoreErrorCode.NOT_READY, `snapshot ${this.source}: ${(e as Error).message}`, { cause: e });
    }
    this.reads++;
    return out;
  }

  write(): Promise<void> {
    return Promise.reject(new BackstoreError(BackstoreErrorCode.WRITE_PROTECTED, `read-only export of snapshot ${this.source}`));
  }

  unmap(): Promise<void> {
    return this.write();
  }

  async flush(): Promise<void> {
    this.check(0, 0);
  }

  async close(): Promise<void> {
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    this.closed = true;
    this.bucket.destroy();
  }

  stats(): Record<string, number | string | null> {
    const c = this.bucket.counters;
    return { size: this.size, snapshot: this.source, manifest_generation: this.generation, read_only: 'snapshot export',
      bytes_downloaded: c.bytes_downloaded, get_count: c.get_count, put_count: c.put_count, checksum_errors: this.store.codec.corrupt };
  }
}

export async function openSnapshotExport(spec: ObjectBackstoreSpec, log: Logger): Promise<Backstore> {
  const timeoutMs = spec.read_timeout_ms ?? 10_000;
  const bucket = new Bucket({ bucket: spec.bucket, endpoint: spec.endpoint, region: spec.region, forcePathStyle: spec.force_path_style,
    connectTimeoutMs: Math.min(3000, timeoutMs) });
  try {
    const key = await loadVolumeKey(spec.name, spec.encryption_key_file);
    const keyHint = spec.encryption_key_file ? `encryption_key_file ${spec.encryption_key_file}` : `environment ${keyEnvName(spec.name)} or encryption_key_file`;
    const src = await checkCloneSource(bucket, spec.source!, { size: spec.size, key, keyHint, timeoutMs, log });
    const chunkSize = src.descriptor.chunk_size;
    const manifest = await VolumeManifest.load({ bucket, prefix: src.prefix, size: src.root.size, chunkSize, retain: 1, timeoutMs, log,
      rootKey: keys.snapshot(src.prefix, src.snapshot) });
    const store = new ObjectStore(bucket, src.prefix, manifest, chunkSize, key, log,
      { mayUpload: () => 'read-only snapshot export', mayMutate: () => false, role: () => 'reader' });
    log.info({ source: spec.source, generation: src.root.generation }, 'object volume: exporting a snapshot read-only');
    return new SnapshotExport(spec.size, bucket, store, chunkSize, timeoutMs, src.root.generation, spec.source!);
  } catch (e) {
    bucket.destroy();
    if (e instanceof BackstoreError) throw e;
    const err = e as Error & { $metadata?: unknown };
    throw new BackstoreError(err.$metadata !== undefined ? BackstoreErrorCode.NOT_READY : BackstoreErrorCode.IO, `object backstore ${spec.name}: ${err.message}`, { cause: e });
  }
}
