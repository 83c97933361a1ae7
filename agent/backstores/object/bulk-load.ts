// docs/import.md §The background copy: whole chunks of clean source data written straight to the bucket as chunk
// objects (what compaction writes) and staged in the manifest — no cache, journal or log segment on the way —
// never over a chunk the cache holds (newer data, or a copy that a stage would make stale).
import type { ChunkCache } from '../../cache/chunk-cache.js';
import type { ObjectStore } from './store.js';

export interface BulkLoader {
  readonly chunkSize: number;
  /**
   * Uploads `data` (all of chunk `index`) as the chunk's object and stages it in the manifest. False (nothing
   * staged; the object becomes garbage) when the cache holds the chunk or its mapping moved meanwhile.
   * The caller keeps writes out of the chunk until this resolves.
   */
  load(index: number, data: Buffer): Promise<boolean>;
  /** Writes a root naming everything staged: only then may a crash-proof record say those chunks are loaded. */
  commit(): Promise<void>;
}

export async function loadChunk(parts: { cache: ChunkCache; store: ObjectStore }, index: number, data: Buffer): Promise<boolean> {
  const { cache, store } = parts;
  if (cache.holds(index)) return false;
  const v = store.version(index);
  const up = await store.uploadChunk(index, data);
  let staged = false;
  // A read that installed the chunk meanwhile would keep serving what it fetched: the loaded object must not pass it.
  store.stage(up, (i) => (staged = !cache.holds(i) && store.version(i) === v));
  return staged;
}

export async function commitLoaded(parts: { store: ObjectStore }): Promise<void> {
  if (!parts.store.hasUncommitted) return;
  await parts.store.commit();
}
