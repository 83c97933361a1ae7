// docs/bucket-format.md §Manifests, §Garbage collection: the chunk maps, paged manifest writes (roots ordered
// by epoch then generation), per-segment live bytes, and deletion of objects no retained root references.
import type { Logger } from '../../lib/log.js';
import { Mutex } from '../../cache/mutex.js';
import type { Bucket } from './bucket.js';
import { overlay, cutExtent } from './chunk-map.js';
import { loadNewestRoot, readRoot, referencedKeys, snapshotReferences } from './roots.js';
import { PAGE_CHUNKS, keys, ownsKey, parseJson, decodeRootV2, type ChunkMap, type Extent, type BaseRef, type RootV2 } from './format.js';
import { writeRoot } from './manifest-write.js';
import { deleteGarbage, sweepGarbage } from './sweep.js';
import { otherReferences } from './snapshot-refs.js';

interface Doomed { lastGen: number; key: string }
interface SegInfo { size: number; live: number; finished: boolean; chunks: Set<number> }

export { mapLimit } from './manifest-write.js';

export interface ManifestOptions {
  bucket: Bucket;
  prefix: string;
  size: number;
  chunkSize: number;
  /** Manifest generations kept (the newest N); objects only older ones reference are deleted. */
  retain: number;
  timeoutMs: number;
  log: Logger;
  /** Writer epoch recorded in every root (the writer lease supplies it; setEpoch changes it). */
  epoch?: number;
  /** Called once before the first format 2 root of a volume loaded from format 1 (rewrites volume.json). */
  onUpgrade?: () => Promise<void>;
  /** Load this root (a snapshot's, for a read-only export) instead of the newest one. */
  rootKey?: string;
}

/** The volume's chunk maps as the next manifest will record them, plus what the bucket holds durably. */
export class VolumeManifest {
  private readonly chunks = new Map<number, ChunkMap>();
  private readonly versions = new Map<number, number>();
  /** page index → [page id, crc], as of the last written root. */
  private pages = new Map<number, [string, number]>();
  private readonly dirtyPages = new Set<number>();
  /** Bytes of each page as last written: what rewriting it will cost again. */
  private readonly pageBytes = new Map<number, number>();
  /** Data objects uploaded but not yet named by a root being written or written. */
  private readonly pendingKeys = new Set<string>();
  /**
   * Data objects whose PUT has started and not yet returned. A PUT can land in the bucket (and in a sweep's
   * listing) before its response reaches us, so the key is registered before the request is sent.
   */
  private readonly inflightKeys = new Set<string>();
  private doomed: Doomed[] = [];
  private writing: number | null = null;
  private nextGen: number;
  private stageEpoch = 0;
  private rootKey: string | null = null;
  /** Loaded from format 1: the first commit writes every page in format 2 and dooms the format 1 objects. */
  private upgradeFrom: string[] | null = null;
  readonly segments = new Map<string, SegInfo>();
  generation: number;
  epoch: number;
  /** Object keys referenced by snapshots: never deleted by GC (reloaded from the bucket by sweeps). */
  private protectedKeys = new Set<string>();
  /** The newest root written by this process (snapshots copy it). */
  private lastRoot: RootV2 | null = null;
  private readonly exclusive = new Mutex();

  private constructor(private readonly o: ManifestOptions, generation: number) {
    this.generation = generation;
    this.nextGen = generation + 1;
    this.epoch = o.epoch ?? 0;
  }

  static async load(o: ManifestOptions): Promise<VolumeManifest> {
    const r = o.rootKey ? await readRoot(o.bucket, o.prefix, o.rootKey, o.chunkSize, o.timeoutMs) : await loadNewestRoot(o.bucket, o.prefix, o.chunkSize, o.timeoutMs);
    const m = new VolumeManifest(o, r?.generation ?? 0);
    // Before any commit can doom an object a snapshot still needs (the open-time sweep reloads these too).
    if (!o.rootKey) m.protectedKeys = await snapshotReferences(o.bucket, o.prefix, o.chunkSize, o.timeoutMs);
    if (o.onUpgrade) m.upgradeFrom = [];
    if (!r) return m;
    m.rootKey = r.key;
    m.epoch = Math.max(m.epoch, r.epoch);
    for (const [i, c] of r.chunks) {
      m.chunks.set(i, c);
      for (const x of c.ext) {
        if (x.obj === null) continue;
        const s = m.seg(x.obj, true);
        s.live += x.len;
        s.chunks.add(i);
      }
    }
    if (r.version === 1) m.upgradeFrom = r.objectKeys;
    else m.pages = r.pages;
    o.log.info({ generation: r.generation, epoch: r.epoch, version: r.version, chunks: m.chunks.size }, 'object volume: manifest loaded');
    return m;
  }

  private seg(id: string, create = false): SegInfo {
    let s = this.segments.get(id);
    if (!s) {
      s = { size: 0, live: 0, finished: true, chunks: new Set() };
      if (create) this.segments.set(id, s);
    }
    return s;
  }

  /** The writer epoch for roots written from now on (never lowered). */
  setEpoch(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad epoch ${n}`);
    this.epoch = Math.max(this.epoch, n);
  }

  get chunkCount(): number {
    return this.chunks.size;
  }

  get formatVersion(): number {
    return this.upgradeFrom ? 1 : 2;
  }

  /** Id of the whole-chunk object under chunk `index` (for tests and tooling; extents may overlay it). */
  idOf(index: number): string | undefined {
    return this.chunks.get(index)?.base?.id;
  }

  map(index: number): ChunkMap | undefined {
    return this.chunks.get(index);
  }

  /** Bumped whenever the chunk's mapping changes (a fetched copy is stale if it moved meanwhile). */
  version(index: number): number {
    return this.versions.get(index) ?? 0;
  }

  /** Estimated bytes the next manifest write uploads (the changed pages as last written, plus the root). */
  get commitCost(): number {
    let n = 512;
    for (const p of this.dirtyPages) n += this.pageBytes.get(p) ?? 4096;
    return n;
  }

  get hasUncommitted(): boolean {
    return this.dirtyPages.size > 0;
  }

  private touched(index: number): number {
    this.versions.set(index, this.version(index) + 1);
    this.dirtyPages.add(Math.floor(index / PAGE_CHUNKS));
    return ++this.stageEpoch;
  }

  private lose(lost: Array<[string, number]>): void {
    for (const [obj, bytes] of lost) {
      const s = this.segments.get(obj);
      if (!s) continue;
      s.live -= bytes;
      if (s.live <= 0 && s.finished) this.dropSegment(obj);
    }
  }

  private dropSegment(id: string): void {
    this.segments.delete(id);
    this.drop(keys.segment(this.o.prefix, id));
  }

  /** A data object's PUT is about to start: the sweep must not delete it even if it lists it before uploaded(). */
  uploading(key: string): void {
    this.inflightKeys.add(key);
  }

  /** The PUT of `key` failed: if it landed after all, nothing names it and the next open-time sweep frees it. */
  abandoned(key: string): void {
    this.inflightKeys.delete(key);
  }

  /** A data object was uploaded: it is garbage unless a root names it. */
  uploaded(key: string, segment?: { id: string; size: number }): void {
    this.pendingKeys.add(key);
    this.inflightKeys.delete(key);
    if (segment) this.segments.set(segment.id, { size: segment.size, live: 0, finished: false, chunks: new Set() });
  }

  /** Every extent of a new segment is staged (or not wanted): from now on it is collected when nothing is live. */
  finishSegment(id: string): void {
    const s = this.segments.get(id);
    if (!s) return;
    s.finished = true;
    if (s.live <= 0) this.dropSegment(id);
  }

  /** The newest stage epoch handed out. */
  get stagedEpochNow(): number {
    return this.stageEpoch;
  }

  /** An uploaded object that will never be staged (its chunk was unmapped meanwhile). */
  discard(key: string): void {
    this.pendingKeys.add(key);
    this.drop(key);
  }

  /** A chunk overlaid by more than `limit` extents (compaction rewrites it whole), if any. */
  fragmentedChunk(limit: number): number | undefined {
    for (const [i, c] of this.chunks) if (c.ext.length > limit) return i;
    return undefined;
  }

  /** Chunk `index` becomes `base` (null: zeros / unmapped) with no extents. */
  stageBase(index: number, base: BaseRef | null): number {
    const old = this.chunks.get(index);
    if (!old && !base) return ++this.stageEpoch;
    if (old) {
      this.lose(old.ext.filter((x) => x.obj !== null).map((x) => [x.obj!, x.len]));
      if (old.base) this.drop(keys.chunk(this.o.prefix, old.base.id));
    }
    if (base) this.chunks.set(index, { base, ext: [] });
    else this.chunks.delete(index);
    return this.touched(index);
  }

  /** Lays extents (from one new segment, or zeros) over chunk `index`. */
  stageExtents(index: number, exts: readonly Extent[]): number {
    let map = this.chunks.get(index);
    // Zeros over a chunk that holds nothing change nothing (the flusher still sees the epoch committed).
    if (!map && exts.every((x) => x.obj === null)) return ++this.stageEpoch;
    if (!map) map = { base: null, ext: [] };
    for (const x of exts) {
      this.lose(overlay(map, x));
      if (x.obj !== null) { const s = this.seg(x.obj, true); s.live += x.len; s.chunks.add(index); }
    }
    if (map.base || map.ext.length) this.chunks.set(index, map);
    else this.chunks.delete(index);
    return this.touched(index);
  }

  /** Compaction: `nx` (a copy of data read from `from`) replaces only what still points into `from`. */
  stageMoved(index: number, from: string, nx: Extent): number {
    const map = this.chunks.get(index);
    if (!map) return this.stageEpoch;
    const pieces = map.ext.filter((e) => e.obj === from && e.off < nx.off + nx.len && e.off + e.len > nx.off)
      .map((e) => cutExtent(nx, Math.max(e.off, nx.off), Math.min(e.off + e.len, nx.off + nx.len)));
    return pieces.length ? this.stageExtents(index, pieces) : this.stageEpoch;
  }

  /** Live extents of segment `id`, by chunk. */
  liveExtents(id: string): Array<[number, Extent]> {
    const out: Array<[number, Extent]> = [];
    for (const i of this.segments.get(id)?.chunks ?? []) {
      for (const x of this.chunks.get(i)?.ext ?? []) if (x.obj === id) out.push([i, x]);
    }
    return out;
  }

  /** Committed segments whose live fraction fell below `threshold`, emptiest first, up to `maxLive` live bytes. */
  compactionCandidates(threshold: number, maxLive: number): string[] {
    const c = [...this.segments].filter(([id, s]) => s.finished && s.size > 0 && s.live > 0 && s.live < threshold * s.size
      && !this.pendingKeys.has(keys.segment(this.o.prefix, id)));
    c.sort((a, b) => a[1].live / a[1].size - b[1].live / b[1].size);
    const out: string[] = [];
    let total = 0;
    for (const [id, s] of c) {
      if (out.length && total + s.live > maxLive) break;
      out.push(id);
      total += s.live;
    }
    return out;
  }

  /** Records a segment size learnt from a listing (segments loaded from a root have no recorded size). */
  learnSize(id: string, bytes: number): void {
    const s = this.segments.get(id);
    if (s && s.size === 0) s.size = bytes;
  }

  private drop(key: string): void {
    // A clone's references into the volume it was cloned from are that volume's to collect, never this one's.
    if (!ownsKey(this.o.prefix, key)) return;
    if (this.pendingKeys.delete(key)) this.doomed.push({ lastGen: -1, key });
    else this.doomed.push({ lastGen: this.writing ?? this.generation, key });
  }

  /** Writes changed pages, then the root naming them. Returns the stage epoch it covers. */
  commit(): Promise<number> {
    return this.exclusive.run(() => this.commitNow());
  }

  private async commitNow(force = false): Promise<number> {
    const stageEpoch = this.stageEpoch;
    if (this.dirtyPages.size === 0 && !this.upgradeFrom && !(force && !this.rootKey)) return stageEpoch;
    if (this.upgradeFrom) {
      await this.o.onUpgrade?.();
      for (const i of this.chunks.keys()) this.dirtyPages.add(Math.floor(i / PAGE_CHUNKS));
    }
    const gen = Math.max(this.nextGen, this.generation + 1);
    this.nextGen = gen + 1;
    const pageSet = [...this.dirtyPages];
    const pending = [...this.pendingKeys];
    this.dirtyPages.clear();
    this.pendingKeys.clear();
    this.writing = gen;
    const newPages = new Map(this.pages);
    const written: string[] = [];
    const byPage = new Map<number, Map<number, ChunkMap>>();
    for (const p of pageSet) byPage.set(p, new Map());
    for (const [i, c] of this.chunks) byPage.get(Math.floor(i / PAGE_CHUNKS))?.set(i, c);
    const rootKey = keys.root(this.o.prefix, this.epoch, gen);
    try {
      this.lastRoot = await writeRoot(this.o, { epoch: this.epoch, generation: gen, rootKey, pageSet, byPage, pages: newPages, pageBytes: this.pageBytes, written });
    } catch (e) {
      for (const p of pageSet) this.dirtyPages.add(p);
      for (const k of pending) this.pendingKeys.add(k);
      for (const key of written) this.doomed.push({ lastGen: -1, key });
      this.writing = null;
      throw e;
    }
    const prev = this.generation;
    for (const p of pageSet) {
      const old = this.pages.get(p);
      if (old !== undefined && old[0] !== newPages.get(p)?.[0]) this.doomed.push({ lastGen: prev, key: keys.page(this.o.prefix, old[0]) });
    }
    if (this.upgradeFrom) for (const key of this.upgradeFrom) this.doomed.push({ lastGen: prev, key });
    this.upgradeFrom = null;
    if (this.rootKey) this.doomed.push({ lastGen: prev, key: this.rootKey });
    this.rootKey = rootKey;
    this.pages = newPages;
    this.generation = gen;
    this.writing = null;
    return stageEpoch;
  }

  /** Deletes objects referenced only by roots older than the retained window. Returns keys deleted. */
  async collect(): Promise<number> {
    const horizon = this.generation - this.o.retain;
    const ready = this.doomed.filter((d) => d.lastGen <= horizon && !this.protectedKeys.has(d.key));
    if (ready.length === 0) return 0;
    const set = new Set(ready);
    this.doomed = this.doomed.filter((d) => !set.has(d));
    try {
      await deleteGarbage(this.o, ready.map((d) => d.key));
    } catch (e) {
      this.doomed.push(...ready);
      throw e;
    }
    return ready.length;
  }

  /** Every key the in-memory state names: chunk maps, pages, the current root, and objects not yet named or collected. */
  private heldKeys(): Set<string> {
    const { prefix } = this.o;
    const s = new Set<string>();
    for (const c of this.chunks.values()) {
      if (c.base) s.add(keys.chunk(prefix, c.base.id));
      for (const x of c.ext) if (x.obj !== null) s.add(keys.segment(prefix, x.obj));
    }
    for (const [id] of this.pages.values()) s.add(keys.page(prefix, id));
    for (const k of this.pendingKeys) s.add(k);
    for (const k of this.inflightKeys) s.add(k);
    for (const d of this.doomed) s.add(d.key);
    for (const k of this.upgradeFrom ?? []) s.add(k);
    if (this.rootKey) s.add(this.rootKey);
    return s;
  }

  /**
   * After a snapshot object was deleted: deletes the objects of `deleted` (the keys its root named) that nothing
   * else references — no retained root, remaining snapshot or clone (`others`, listed after the deletion), nor
   * the in-memory state — then collects what the snapshot had held back. The open-time sweep stays the safety net.
   */
  releaseSnapshot(deleted: readonly string[]): Promise<number> {
    const { bucket, prefix, chunkSize, retain, timeoutMs } = this.o;
    return this.exclusive.run(async () => {
      const before = this.heldKeys();
      const ref = await otherReferences(bucket, prefix, chunkSize, retain, timeoutMs);
      // Snapshots are only created and deleted under `exclusive`, so this is what they protect now.
      this.protectedKeys = ref.snapshotKeys;
      const after = this.heldKeys();
      // Objects the snapshot shares with the doomed list are the collector's (it honours the retain window).
      const alone = deleted.filter((k) => ownsKey(prefix, k) && !ref.live.has(k) && !before.has(k) && !after.has(k));
      await deleteGarbage(this.o, alone);
      return alone.length + await this.collect();
    });
  }

  /**
   * Full sweep (at open): deletes data objects and pages that no retained root, snapshot or in-memory state
   * references — leftovers of a crash between an upload and its root — and roots older than the window.
   */
  sweep(): Promise<number> {
    return this.exclusive.run(() => this.sweepNow());
  }

  private async sweepNow(): Promise<number> {
    const { bucket, prefix, timeoutMs, chunkSize } = this.o;
    const ref = await referencedKeys(bucket, prefix, chunkSize, this.o.retain, timeoutMs);
    // Snapshots are only created and deleted under `exclusive`, so this listing is current.
    this.protectedKeys = ref.snapshotKeys;
    const inMemory = (): Set<string> => this.heldKeys();
    const before = inMemory();
    const toDelete = await sweepGarbage(this.o, ref, before, inMemory, (id, size) => this.learnSize(id, size));
    await deleteGarbage(this.o, toDelete);
    return toDelete.length;
  }

  /**
   * A snapshot (docs/bucket-format.md §Snapshot, clone): writes a root if anything is staged (or none exists yet),
   * protects every object that root names, then hands a copy of it to `write` (which stores the snapshot object).
   * Runs under the manifest lock, so no commit, collection or sweep interleaves. The caller has made sure that
   * everything acknowledged is staged (a flush point).
   */
  snapshot(write: (root: RootV2) => Promise<void>): Promise<RootV2> {
    return this.exclusive.run(async () => {
      await this.commitNow(true);
      // Nothing is staged now, so the chunk maps are exactly what the current root names.
      const names = new Set<string>();
      for (const c of this.chunks.values()) {
        if (c.base) names.add(keys.chunk(this.o.prefix, c.base.id));
        for (const x of c.ext) if (x.obj !== null) names.add(keys.segment(this.o.prefix, x.obj));
      }
      for (const [id] of this.pages.values()) names.add(keys.page(this.o.prefix, id));
      let root = this.lastRoot;
      if (!root || !this.rootKey || keys.root(this.o.prefix, root.epoch, root.generation) !== this.rootKey) {
        const body = await this.o.bucket.get(this.rootKey!, this.o.timeoutMs);
        if (!body) throw new Error(`${this.rootKey} is missing from the bucket`);
        const v = parseJson(body, this.rootKey!) as { version?: number };
        if (v.version !== 2) throw new Error('snapshots need a format 2 root; write to the volume once to upgrade it');
        root = decodeRootV2(v);
      }
      for (const k of names) this.protectedKeys.add(k);
      await write(root);
      return root;
    });
  }
}
