// docs/bucket-format.md §Manifests: writing a root — the changed pages first (each a new immutable object),
// then the root naming every page, so a reader never sees a root whose pages are not in the bucket.
import { crc32c } from '../../lib/crc32c.js';
import { PAGE_CHUNKS, keys, newObjectId, frameJson, encodePageV2, type ChunkMap, type RootV2 } from './format.js';
import type { ManifestOptions } from './manifest.js';

export async function mapLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => { while (next < items.length) await fn(items[next++]!); };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface RootWrite {
  epoch: number;
  generation: number;
  rootKey: string;
  /** Pages to write again, with the chunk maps each holds now (an empty map: the page is dropped). */
  pageSet: readonly number[];
  byPage: Map<number, Map<number, ChunkMap>>;
  /** page index → [page id, crc]: updated in place with the pages written. */
  pages: Map<number, [string, number]>;
  /** Bytes of each page as written (the next commit's cost estimate), updated in place. */
  pageBytes: Map<number, number>;
  /** Keys of the pages PUT so far (a failed write dooms them). */
  written: string[];
}

export async function writeRoot(o: ManifestOptions, w: RootWrite): Promise<RootV2> {
  const bodies = w.pageSet.map((p) => {
    const entries = w.byPage.get(p)!;
    if (entries.size === 0) { w.pages.delete(p); return null; }
    const body = frameJson(encodePageV2(p, entries));
    w.pageBytes.set(p, body.length);
    const id = newObjectId();
    w.pages.set(p, [id, crc32c(body)]);
    return { id, body };
  });
  await mapLimit(bodies.filter((b) => b !== null), 4, async (b) => {
    w.written.push(keys.page(o.prefix, b!.id));
    await o.bucket.put(keys.page(o.prefix, b!.id), b!.body, o.timeoutMs, 'application/json');
  });
  const root: RootV2 = {
    format: 'outpost-manifest', version: 2, epoch: w.epoch, generation: w.generation, created: new Date().toISOString(),
    size: o.size, chunk_size: o.chunkSize, page_chunks: PAGE_CHUNKS,
    pages: Object.fromEntries([...w.pages].sort((a, b) => a[0] - b[0])),
  };
  await o.bucket.put(w.rootKey, frameJson(root), o.timeoutMs, 'application/json');
  return root;
}
