// docs/bucket-format.md §Manifests, §Garbage collection: the chunk map, paged manifest writes, and deletion of
// objects that no retained manifest references.
import type { Logger } from '../../lib/log.js';
import { Mutex } from '../../cache/mutex.js';
import type { Bucket } from './bucket.js';
import {
  FORMAT_VERSION, PAGE_CHUNKS, keys, newObjectId, parseJson, decodeManifestRoot, decodeManifestPage,
  generationOfManifestKey, type ManifestRoot, type ManifestPage,
} from './format.js';

interface Doomed { lastGen: number; key: string }

async function mapLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => { while (next < items.length) await fn(items[next++]!); };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface ManifestOptions {
  bucket: Bucket;
  prefix: string;
  size: number;
  chunkSize: number;
  /** Manifest generations kept (the newest N); objects only older ones reference are deleted. */
  retain: number;
  timeoutMs: number;
  log: Logger;
  /** Writer epoch stamped on every root written (docs/writer-lease.md). */
  epoch?: number;
}

/** The volume's chunk map as the next manifest will record it, plus what the bucket holds durably. */
export class VolumeManifest {
  /** page index → (chunk index → chunk id): the staged state. */
  private readonly chunks = new Map<number, Map<number, string>>();
  /** page index → page id, as of the last written manifest. */
  private pages = new Map<number, string>();
  private readonly dirtyPages = new Set<number>();
  /** Chunk ids uploaded but not yet in a manifest being written or written. */
  private readonly pendingIds = new Set<string>();
  private doomed: Doomed[] = [];
  private writing: number | null = null;
  private nextGen: number;
  private stageEpoch = 0;
  generation: number;
  /** Object keys referenced by snapshots: never deleted by GC. */
  private readonly protectedKeys = new Set<string>();
  /** commit() and sweep() never interleave: a sweep must not see a half-written manifest's pages. */
  private readonly exclusive = new Mutex();

  private constructor(private readonly o: ManifestOptions, generation: number) {
    this.generation = generation;
    this.nextGen = generation + 1;
  }

  static async load(o: ManifestOptions): Promise<VolumeManifest> {
    const newest = await o.bucket.list(keys.manifests(o.prefix), 1, o.timeoutMs);
    const gen = newest.length ? generationOfManifestKey(newest[0]!) : undefined;
    const m = new VolumeManifest(o, gen ?? 0);
    if (gen !== undefined) {
      const root = await m.readRoot(newest[0]!);
      m.pages = new Map(Object.entries(root.pages).map(([k, id]) => [Number(k), id]));
      await mapLimit([...m.pages], 8, async ([p, id]) => {
        const page = await m.readPage(p, id);
        m.chunks.set(p, new Map(Object.entries(page.chunks).map(([k, cid]) => [Number(k), cid])));
      });
      o.log.info({ generation: gen, pages: m.pages.size, chunks: m.chunkCount }, 'object volume: manifest loaded');
    }
    return m;
  }

  private async readRoot(key: string): Promise<ManifestRoot> {
    const buf = await this.o.bucket.get(key, this.o.timeoutMs);
    if (!buf) throw new Error(`manifest ${key} disappeared`);
    const root = decodeManifestRoot(parseJson(buf, key));
    if (root.chunk_size !== this.o.chunkSize || root.page_chunks !== PAGE_CHUNKS) throw new Error(`${key}: chunk geometry differs from the volume's`);
    return root;
  }

  private async readPage(p: number, id: string): Promise<ManifestPage> {
    const key = keys.page(this.o.prefix, id);
    const buf = await this.o.bucket.get(key, this.o.timeoutMs);
    if (!buf) throw new Error(`manifest page ${key} is missing`);
    return decodeManifestPage(parseJson(buf, key), p);
  }

  get chunkCount(): number {
    let n = 0;
    for (const m of this.chunks.values()) n += m.size;
    return n;
  }

  /** Chunk ids the staged map names (for tests and replication tooling). */
  idOf(index: number): string | undefined {
    return this.chunks.get(Math.floor(index / PAGE_CHUNKS))?.get(index);
  }

  get hasUncommitted(): boolean {
    return this.dirtyPages.size > 0;
  }

  /** Records chunk `index` → `id` (null: all-zero / unmapped) for the next manifest; returns the stage epoch. */
  stage(index: number, id: string | null): number {
    const p = Math.floor(index / PAGE_CHUNKS);
    let page = this.chunks.get(p);
    const old = page?.get(index);
    if (old !== id && (old !== undefined || id !== null)) {
      if (id === null) page!.delete(index);
      else {
        if (!page) this.chunks.set(p, (page = new Map()));
        page.set(index, id);
        this.pendingIds.add(id);
      }
      if (page && page.size === 0) this.chunks.delete(p);
      this.dirtyPages.add(p);
      if (old !== undefined) this.drop(old);
    }
    return ++this.stageEpoch;
  }

  /** An uploaded chunk object that will never be staged (its chunk was unmapped meanwhile). */
  discard(id: string): void {
    this.pendingIds.add(id);
    this.drop(id);
  }

  private drop(id: string): void {
    const key = keys.chunk(this.o.prefix, id);
    if (this.pendingIds.delete(id)) this.doomed.push({ lastGen: -1, key });
    else this.doomed.push({ lastGen: this.writing ?? this.generation, key });
  }

  /** Writes changed pages, then the manifest root naming them. Returns the stage epoch it covers. */
  commit(): Promise<number> {
    return this.exclusive.run(() => this.commitNow());
  }

  private async commitNow(): Promise<number> {
    const epoch = this.stageEpoch;
    if (this.dirtyPages.size === 0) return epoch;
    const gen = Math.max(this.nextGen, this.generation + 1);
    this.nextGen = gen + 1;
    const pageSet = [...this.dirtyPages];
    const pending = [...this.pendingIds];
    this.dirtyPages.clear();
    this.pendingIds.clear();
    this.writing = gen;
    const newPages = new Map(this.pages);
    const written: string[] = [];
    try {
      const bodies = pageSet.map((p) => {
        const entries = this.chunks.get(p);
        if (!entries || entries.size === 0) { newPages.delete(p); return null; }
        const page: ManifestPage = { format: 'outpost-page', version: FORMAT_VERSION, page: p, chunks: Object.fromEntries(entries) };
        const id = newObjectId();
        newPages.set(p, id);
        return { id, body: Buffer.from(JSON.stringify(page)) };
      });
      await mapLimit(bodies.filter((b) => b !== null), 4, async (b) => {
        written.push(keys.page(this.o.prefix, b!.id));
        await this.o.bucket.put(keys.page(this.o.prefix, b!.id), b!.body, this.o.timeoutMs, 'application/json');
      });
      const root: ManifestRoot = {
        format: 'outpost-manifest', version: FORMAT_VERSION, generation: gen, epoch: this.o.epoch, created: new Date().toISOString(),
        size: this.o.size, chunk_size: this.o.chunkSize, page_chunks: PAGE_CHUNKS,
        pages: Object.fromEntries([...newPages].sort((a, b) => a[0] - b[0])),
      };
      await this.o.bucket.put(keys.manifest(this.o.prefix, gen), Buffer.from(JSON.stringify(root)), this.o.timeoutMs, 'application/json');
    } catch (e) {
      for (const p of pageSet) this.dirtyPages.add(p);
      for (const id of pending) this.pendingIds.add(id);
      for (const key of written) this.doomed.push({ lastGen: -1, key });
      this.writing = null;
      throw e;
    }
    const prev = this.generation;
    for (const p of pageSet) {
      const old = this.pages.get(p);
      if (old !== undefined && old !== newPages.get(p)) this.doomed.push({ lastGen: prev, key: keys.page(this.o.prefix, old) });
    }
    if (prev > 0) this.doomed.push({ lastGen: prev, key: keys.manifest(this.o.prefix, prev) });
    this.pages = newPages;
    this.generation = gen;
    this.writing = null;
    return epoch;
  }

  /** Deletes objects referenced only by manifests older than the retained window. Returns keys deleted. */
  async collect(): Promise<number> {
    const horizon = this.generation - this.o.retain;
    const ready = this.doomed.filter((d) => d.lastGen <= horizon && !this.protectedKeys.has(d.key));
    if (ready.length === 0) return 0;
    const set = new Set(ready);
    this.doomed = this.doomed.filter((d) => !set.has(d));
    try {
      await this.o.bucket.delete(ready.map((d) => d.key), this.o.timeoutMs);
    } catch (e) {
      this.doomed.push(...ready);
      throw e;
    }
    return ready.length;
  }

  /**
   * Full sweep (at open): deletes chunk/page objects that no retained manifest, snapshot or in-memory state
   * references — leftovers of a crash between an upload and its manifest — and manifests older than the window.
   */
  sweep(): Promise<number> {
    return this.exclusive.run(() => this.sweepNow());
  }

  private async sweepNow(): Promise<number> {
    const { bucket, prefix, timeoutMs } = this.o;
    const manifestKeys = await bucket.list(keys.manifests(prefix), Infinity, timeoutMs);
    const live = new Set<string>();
    const addRoot = async (root: ManifestRoot): Promise<void> => {
      for (const [p, id] of Object.entries(root.pages)) {
        live.add(keys.page(prefix, id));
        const page = await this.readPage(Number(p), id);
        for (const cid of Object.values(page.chunks)) live.add(keys.chunk(prefix, cid));
      }
    };
    for (const key of manifestKeys.slice(0, this.o.retain)) await addRoot(await this.readRoot(key));
    for (const key of await bucket.list(keys.snapshots(prefix), Infinity, timeoutMs)) {
      const before = new Set(live);
      await addRoot(decodeManifestRoot(parseJson((await bucket.get(key, timeoutMs)) ?? Buffer.from('null'), key)));
      for (const k of live) if (!before.has(k)) this.protectedKeys.add(k);
    }
    // Whatever this process staged or will delete itself stays out of the sweep.
    for (const page of this.chunks.values()) for (const id of page.values()) live.add(keys.chunk(prefix, id));
    for (const id of this.pages.values()) live.add(keys.page(prefix, id));
    for (const id of this.pendingIds) live.add(keys.chunk(prefix, id));
    for (const d of this.doomed) live.add(d.key);
    const objects = [
      ...await bucket.list(`${prefix}chunks/`, Infinity, timeoutMs),
      ...await bucket.list(`${prefix}pages/`, Infinity, timeoutMs),
    ];
    const garbage = objects.filter((k) => !live.has(k));
    // Re-check in-memory state: uploads may have happened while listing.
    const inMemory = new Set<string>();
    for (const id of this.pendingIds) inMemory.add(keys.chunk(prefix, id));
    for (const page of this.chunks.values()) for (const id of page.values()) inMemory.add(keys.chunk(prefix, id));
    for (const id of this.pages.values()) inMemory.add(keys.page(prefix, id));
    const toDelete = [...garbage.filter((k) => !inMemory.has(k)), ...manifestKeys.slice(this.o.retain)];
    if (toDelete.length) await bucket.delete(toDelete, timeoutMs);
    return toDelete.length;
  }
}
