// Opening an object volume (docs/bucket-format.md §Opening, docs/writer-lease.md): configuration checks, the
// writer lease, a clone's materialisation, then the cache and manifest under the lease's role.
import { join } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { silentLogger, type Logger } from '../../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type Backstore } from '../backstore.js';
import { ChunkCache } from '../../cache/chunk-cache.js';
import { Bucket } from './bucket.js';
import { checkDescriptor, openVolume } from './volume.js';
import { DEFAULT_CHUNK_SIZE, decodeDescriptor, keys, normalizePrefix, parseJson, type VolumeDescriptor } from './format.js';
import { WriterLease } from './lease.js';
import { readJournal } from '../../cache/journal.js';
import { DeferredObjectBackstore, localCopies } from './deferred.js';
import { ObjectStore } from './store.js';
import { keyEnvName, loadVolumeKey } from './crypto.js';
import { ObjectSites } from '../../sites/object-sites.js';
import { checkCloneSource, materializeClone, parseSource, type CloneSource } from './clone.js';
import { openSnapshotExport } from './snapshot-export.js';
import { ObjectBackstore, type VolumeParts } from '../object.js';
import { num, type ObjectBackstoreSpec } from './spec.js';
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
        ...(spec.segment_age_ms !== undefined ? { segmentAgeMs: num(spec.segment_age_ms, 'segment_age_ms') } : {}),
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
