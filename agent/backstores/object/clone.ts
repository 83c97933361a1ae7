// docs/bucket-format.md §Snapshot, clone: a clone is a new volume whose first root is a snapshot's, its pages
// naming the origin's data objects as `<origin prefix>#<id>` (shared, never copied, never collected by the clone);
// the origin records the clone under `snapshots/<name>.clones/` and refuses to delete that snapshot meanwhile.
import { createHash } from 'node:crypto';
import type { Logger } from '../../lib/log.js';
import type { Bucket } from './bucket.js';
import { crc32c } from '../../lib/crc32c.js';
import { checkDescriptor } from './volume.js';
import { readRoot } from './roots.js';
import { readSnapshot, type DependentRecord, type SnapshotObject } from './snapshots.js';
import {
  FORMAT_VERSION, PAGE_CHUNKS, SNAPSHOT_NAME_RE, decodeDescriptor, encodePageV2, foreignId, frameJson, keys, newObjectId, normalizePrefix,
  parseJson, type ChunkMap, type RootV2, type VolumeDescriptor,
} from './format.js';

export interface CloneSource {
  prefix: string;
  snapshot: string;
  descriptor: VolumeDescriptor;
  root: SnapshotObject;
}

/** `source=<prefix>@<snapshot>` as saveconfig.json stores it (the shell resolves a backstore name to its prefix). */
export function parseSource(source: string): { prefix: string; snapshot: string } {
  const at = source.lastIndexOf('@');
  const prefix = at > 0 ? source.slice(0, at) : '';
  const snapshot = at >= 0 ? source.slice(at + 1) : '';
  if (at <= 0 || !prefix.endsWith('/') || !SNAPSHOT_NAME_RE.test(snapshot)) {
    throw new Error(`source '${source}' must be <bucket prefix ending in '/'>@<snapshot> (the shell also accepts <backstore>@<snapshot>)`);
  }
  return { prefix, snapshot };
}

/** Checks a clone's source before anything is written: the origin volume, its snapshot, the size and the key. */
export async function checkCloneSource(bucket: Bucket, source: string, o: { prefix?: string; size: number; key: Buffer | null; keyHint: string; timeoutMs: number; log: Logger }):
  Promise<CloneSource> {
  const { prefix, snapshot } = parseSource(source);
  if (o.prefix !== undefined && normalizePrefix(o.prefix) === prefix) throw new Error(`a clone cannot live in its source's prefix ${prefix}`);
  const dkey = keys.descriptor(prefix);
  const body = await bucket.get(dkey, o.timeoutMs);
  if (!body) throw new Error(`source volume s3://${bucket.name}/${prefix} not found (no ${dkey})`);
  const descriptor = decodeDescriptor(parseJson(body, dkey));
  if (descriptor.version !== FORMAT_VERSION) throw new Error(`source volume s3://${bucket.name}/${prefix} is in format ${descriptor.version}; write to it once to upgrade it`);
  const root = await readSnapshot(bucket, prefix, snapshot, o.timeoutMs);
  if (!root) throw new Error(`snapshot ${snapshot} of s3://${bucket.name}/${prefix} not found`);
  if (o.size < root.size) throw new Error(`size ${o.size} is smaller than snapshot ${snapshot} (${root.size} bytes)`);
  // Same geometry and the same key: the clone reads the origin's records as they are.
  checkDescriptor({ ...descriptor, size: o.size }, `source volume s3://${bucket.name}/${prefix}`, { size: o.size, key: o.key, keyHint: o.keyHint, log: o.log });
  return { prefix, snapshot, descriptor, root };
}

/** Where the origin records a dependent: one key per clone bucket+prefix, so a retried creation rewrites it. */
export function dependentKey(src: { prefix: string; snapshot: string }, bucket: string, prefix: string): string {
  return keys.dependents(src.prefix, src.snapshot) + createHash('sha256').update(`${bucket}\n${prefix}`).digest('hex').slice(0, 32);
}

/**
 * Writes the clone: the dependent record at the origin first (so the snapshot cannot go while the clone may
 * exist), then the clone's pages and first root, and its descriptor last — a crash before that leaves no
 * volume at the prefix, and the next open starts over (the orphaned pages are swept).
 */
export async function materializeClone(bucket: Bucket, prefix: string, src: CloneSource, o: { size: number; epoch: number; wwn?: string; timeoutMs: number; log: Logger }): Promise<void> {
  const record: DependentRecord = { format: 'outpost-dependent', bucket: bucket.name, prefix, created: new Date().toISOString() };
  await bucket.put(dependentKey(src, bucket.name, prefix), frameJson(record), o.timeoutMs, 'application/json');
  const chunkSize = src.descriptor.chunk_size;
  const loaded = await readRoot(bucket, src.prefix, keys.snapshot(src.prefix, src.snapshot), chunkSize, o.timeoutMs, src.root);
  const byPage = new Map<number, Map<number, ChunkMap>>();
  for (const [i, c] of loaded.chunks) {
    const p = Math.floor(i / PAGE_CHUNKS);
    let m = byPage.get(p);
    if (!m) byPage.set(p, (m = new Map()));
    m.set(i, {
      base: c.base ? { id: foreignId(src.prefix, c.base.id), crcs: c.base.crcs } : null,
      ext: c.ext.map((x) => ({ ...x, obj: x.obj === null ? null : foreignId(src.prefix, x.obj) })),
    });
  }
  const pages: Record<string, [string, number]> = {};
  for (const [p, entries] of [...byPage].sort((a, b) => a[0] - b[0])) {
    const body = frameJson(encodePageV2(p, entries));
    const id = newObjectId();
    await bucket.put(keys.page(prefix, id), body, o.timeoutMs, 'application/json');
    pages[String(p)] = [id, crc32c(body)];
  }
  const root: RootV2 = {
    format: 'outpost-manifest', version: 2, epoch: o.epoch, generation: 1, created: new Date().toISOString(),
    size: o.size, chunk_size: chunkSize, page_chunks: PAGE_CHUNKS, pages,
  };
  await bucket.put(keys.root(prefix, o.epoch, 1), frameJson(root), o.timeoutMs, 'application/json');
  const d: VolumeDescriptor = {
    ...src.descriptor, size: o.size, wwn: o.wwn ?? null, created: new Date().toISOString(), epoch: o.epoch,
    origin: { prefix: src.prefix, snapshot: src.snapshot, generation: src.root.generation },
  };
  await bucket.put(keys.descriptor(prefix), frameJson(d), o.timeoutMs, 'application/json');
  o.log.info({ origin: src.prefix, snapshot: src.snapshot, chunks: loaded.chunks.size }, 'object volume: created as a clone (sharing the snapshot\'s objects)');
}
