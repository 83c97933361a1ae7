// docs/bucket-format.md §Snapshot, clone, §Garbage collection: what a deleted snapshot alone referenced — its
// objects less those the retained roots, the other snapshots and their clones still name — found with a few
// LISTs (roots, snapshots and each clone's roots), not a listing of every data object under the prefix.
import type { Bucket } from './bucket.js';
import { keys, ownsKey, parseJson, snapshotNameOf } from './format.js';
import { keysOf, loadNewestRoot, readRoot } from './roots.js';
import type { DependentRecord } from './snapshots.js';

export interface OtherReferences {
  /** Every key of this prefix that a retained root, a remaining snapshot or one of their clones names. */
  live: Set<string>;
  /** What the remaining snapshots (and their clones) name: GC never deletes these. */
  snapshotKeys: Set<string>;
}

/** References besides the deleted snapshot's (call after its object is gone, so the listing no longer has it). */
export async function otherReferences(bucket: Bucket, prefix: string, chunkSize: number, retain: number, timeoutMs: number): Promise<OtherReferences> {
  const live = new Set<string>();
  const rootKeys = [...await bucket.list(keys.roots(prefix), retain, timeoutMs)];
  if (rootKeys.length < retain) rootKeys.push(...await bucket.list(keys.manifests(prefix), retain - rootKeys.length, timeoutMs));
  for (const key of rootKeys) {
    live.add(key);
    for (const k of keysOf(prefix, await readRoot(bucket, prefix, key, chunkSize, timeoutMs))) live.add(k);
  }
  const snapshotKeys = new Set<string>();
  // One listing gives both the snapshot objects and their dependent records (snapshots/<name>.clones/<id>).
  for (const key of await bucket.list(keys.snapshots(prefix), Infinity, timeoutMs)) {
    if (snapshotNameOf(prefix, key) !== undefined) {
      snapshotKeys.add(key);
      for (const k of keysOf(prefix, await readRoot(bucket, prefix, key, chunkSize, timeoutMs))) snapshotKeys.add(k);
      continue;
    }
    // A clone names this volume's objects as `<prefix>#<id>`: its newest root keeps them (its source snapshot
    // should too, but a clone's own root is what its reads use).
    const body = await bucket.get(key, timeoutMs);
    const rec = body ? parseJson(body, key) as Partial<DependentRecord> : null;
    if (!rec || typeof rec.prefix !== 'string' || rec.bucket !== bucket.name) continue;
    const root = await loadNewestRoot(bucket, rec.prefix, chunkSize, timeoutMs);
    if (root) for (const k of keysOf(rec.prefix, root)) if (ownsKey(prefix, k)) snapshotKeys.add(k);
  }
  for (const k of snapshotKeys) live.add(k);
  return { live, snapshotKeys };
}
