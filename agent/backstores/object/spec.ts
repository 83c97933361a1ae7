// Configuration of an object backstore (saveconfig.json 'object' entries; docs/bucket-format.md §Configuration).
import { BackstoreError, BackstoreErrorCode } from '../backstore.js';

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
  /**
   * Longest a small write waits in the cache to share a log segment with others (segments are cut at 4 MiB, at a
   * flush point, or once their oldest write is this old), default max(5 × upload_delay_ms, 2.5 × commit_interval_ms, 1000).
   */
  segment_age_ms?: number;
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

/** A non-negative integer option (strings from the shell accepted); `dflt` undefined: required. */
export function num(v: unknown, what: string, dflt?: number): number {
  if (v === undefined || v === null || v === '') {
    if (dflt === undefined) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: ${what} is required`);
    return dflt;
  }
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new BackstoreError(BackstoreErrorCode.IO, `object backstore: ${what} must be a non-negative integer`);
  return n;
}
