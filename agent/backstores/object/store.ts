// docs/bucket-format.md §Reads, §Write-back, §Compaction: the object volume as the block cache sees it — ranged
// reads that verify every record, whole-chunk and log-segment uploads, and compaction of sparse segments.
import type { Logger } from '../../lib/log.js';
import type { ChunkRemote, DirtyRuns, Uploaded } from '../../cache/remote.js';
import type { Bucket } from './bucket.js';
import type { VolumeManifest } from './manifest.js';
import { plan } from './chunk-map.js';
import { RecordCodec, SegmentBuilder, baseRecordSpan, buildChunkObject } from './segment.js';
import { createHash } from 'node:crypto';
import { RECORD_SIZE, keys, newObjectId, type BaseRef, type Extent } from './format.js';

/** Segments whose live fraction falls below this are rewritten (their live extents into a fresh segment). */
export const COMPACT_BELOW = 0.5;
/** A chunk overlaid by more extents than this is rewritten as one whole-chunk object. */
export const CHUNK_EXTENT_LIMIT = 1024;
/** Ranged reads of one object merge records closer than this (one GET per object touched, in practice). */
const MERGE_GAP = 1024 * 1024;
const SEGMENT_MAX = 8 * 1024 * 1024;
const UPLOAD_TIMEOUT_MS = 120_000;

type Up = Uploaded & ({ kind: 'base'; base: BaseRef | null } | { kind: 'runs'; seg: string | null; ext: Map<number, Extent[]> });

interface Need { at: number; rlen: number; crc: number | null; what: string }

const ZEROS = Buffer.alloc(64 * 1024);

/** Whether `b` is all zero bytes: a memcmp per 64 KiB (a byte-wise callback cost ~10 ms per 4 MiB chunk). */
function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - i);
    if (ZEROS.compare(b, i, i + n, 0, n) !== 0) return false;
  }
  return true;
}

/** What the writer lease allows (docs/writer-lease.md §Gates); without one every mutation is allowed. */
export interface MutationGate {
  /** Why an upload must not start, or null. */
  mayUpload(): string | null;
  /** Whether a root may be written or objects deleted now. */
  mayMutate(): boolean;
  role(): string;
}

const OPEN_GATE: MutationGate = { mayUpload: () => null, mayMutate: () => true, role: () => 'writer' };

export class ObjectStore implements ChunkRemote {
  readonly codec: RecordCodec;
  compactedBytes = 0;

  constructor(private readonly bucket: Bucket, private readonly prefix: string, private readonly manifest: VolumeManifest,
    private readonly chunkSize: number, key: Buffer | null, private readonly log: Logger, private readonly gate: MutationGate = OPEN_GATE) {
    this.codec = new RecordCodec(key, (what) => log.error({ what }, 'object volume: corrupt record in the bucket; answering with a medium error'));
  }

  hasData(index: number): boolean {
    return this.manifest.map(index) !== undefined;
  }

  version(index: number): number {
    return this.manifest.version(index);
  }

  identity(index: number): string | undefined {
    const map = this.manifest.map(index);
    if (!map) return undefined;
    // The mapping names immutable objects, so equal mappings mean equal bytes (warm restart).
    return createHash('sha256').update(JSON.stringify(map)).digest('hex').slice(0, 32);
  }

  private checkUpload(): void {
    const why = this.gate.mayUpload();
    if (why !== null) throw new Error(why);
  }

  /** A data object PUT, registered with the manifest before it starts so that a concurrent sweep keeps it. */
  private async put(key: string, body: Buffer): Promise<void> {
    this.manifest.uploading(key);
    try {
      await this.bucket.put(key, body, UPLOAD_TIMEOUT_MS);
    } catch (e) {
      this.manifest.abandoned(key);
      throw e;
    }
  }

  /** Fetches and verifies records (grouped per object, one ranged GET per group); returns plaintext by key → at. */
  private async fetchRecords(needs: Map<string, Need[]>, timeoutMs: number): Promise<Map<string, Map<number, Buffer>>> {
    const out = new Map<string, Map<number, Buffer>>();
    await Promise.all([...needs].map(async ([key, list]) => {
      const recs = new Map<number, Buffer>();
      out.set(key, recs);
      list.sort((a, b) => a.at - b.at);
      let i = 0;
      while (i < list.length) {
        let j = i + 1;
        let end = list[i]!.at + list[i]!.rlen;
        while (j < list.length && list[j]!.at - end <= MERGE_GAP) { end = Math.max(end, list[j]!.at + list[j]!.rlen); j++; }
        const start = list[i]!.at;
        const group = list.slice(i, j);
        const buf = await this.bucket.getRange(key, start, end, timeoutMs);
        for (const n of group) recs.set(n.at, this.codec.decode(buf.subarray(n.at - start, n.at - start + n.rlen), n.crc, n.what));
        i = j;
      }
    }));
    return out;
  }

  async read(index: number, off: number, len: number, timeoutMs: number): Promise<Buffer> {
    const out = Buffer.alloc(len);
    const map = this.manifest.map(index);
    if (!map) return out;
    const pieces = plan(map, off, len);
    const needs = new Map<string, Need[]>();
    const need = (key: string, n: Need): void => {
      let l = needs.get(key);
      if (!l) needs.set(key, (l = []));
      if (!l.some((x) => x.at === n.at)) l.push(n);
    };
    const ov = this.codec.overhead;
    const baseKey = map.base ? keys.chunk(this.prefix, map.base.id) : '';
    for (const p of pieces) {
      if (p.kind === 'base') {
        for (let r = Math.floor(p.off / RECORD_SIZE); r * RECORD_SIZE < p.off + p.len; r++) {
          const s = baseRecordSpan(r, this.chunkSize, ov);
          need(baseKey, { at: s.at, rlen: s.rlen, crc: map.base!.crcs?.[r] ?? null, what: `chunk ${index} record ${r} (${baseKey})` });
        }
      } else if (p.kind === 'ext') {
        need(keys.segment(this.prefix, p.x.obj!), { at: p.x.at, rlen: p.x.rlen, crc: p.x.crc, what: `chunk ${index} extent at ${p.x.off} (segment ${p.x.obj} @${p.x.at})` });
      }
    }
    const recs = await this.fetchRecords(needs, timeoutMs);
    for (const p of pieces) {
      if (p.kind === 'base') {
        for (let r = Math.floor(p.off / RECORD_SIZE); r * RECORD_SIZE < p.off + p.len; r++) {
          const plain = recs.get(baseKey)!.get(baseRecordSpan(r, this.chunkSize, ov).at)!;
          const from = Math.max(p.off, r * RECORD_SIZE);
          const to = Math.min(p.off + p.len, r * RECORD_SIZE + plain.length);
          plain.copy(out, from - off, from - r * RECORD_SIZE, to - r * RECORD_SIZE);
        }
      } else if (p.kind === 'ext') {
        const plain = recs.get(keys.segment(this.prefix, p.x.obj!))!.get(p.x.at)!;
        plain.copy(out, p.off - off, p.x.skip, p.x.skip + p.len);
      }
    }
    return out;
  }

  async uploadChunk(index: number, data: Buffer): Promise<Uploaded> {
    if (isZero(data)) return { indices: [index], kind: 'base', base: null } as Up;
    this.checkUpload();
    const { body, crcs } = buildChunkObject(this.codec, data);
    const id = newObjectId();
    await this.put(keys.chunk(this.prefix, id), body);
    this.manifest.uploaded(keys.chunk(this.prefix, id));
    return { indices: [index], kind: 'base', base: { id, crcs } } as Up;
  }

  /** Builds one segment from (index, off, plaintext) pieces; zero records become zero extents (no bytes). */
  private async writeSegment(pieces: Iterable<[number, number, Buffer]>): Promise<{ seg: string | null; ext: Map<number, Extent[]> }> {
    const b = new SegmentBuilder(this.codec);
    const seg = newObjectId();
    const ext = new Map<number, Extent[]>();
    for (const [index, off, data] of pieces) {
      let l = ext.get(index);
      if (!l) ext.set(index, (l = []));
      for (let at = 0; at < data.length; at += RECORD_SIZE) {
        const plain = data.subarray(at, Math.min(data.length, at + RECORD_SIZE));
        if (isZero(plain)) { l.push({ off: off + at, len: plain.length, obj: null, at: 0, rlen: 0, skip: 0, crc: 0 }); continue; }
        const r = b.add(plain);
        l.push({ off: off + at, len: plain.length, obj: seg, at: r.at, rlen: r.rlen, skip: 0, crc: r.crc });
      }
    }
    if (b.size === 0) return { seg: null, ext };
    this.checkUpload();
    await this.put(keys.segment(this.prefix, seg), b.body());
    this.manifest.uploaded(keys.segment(this.prefix, seg), { id: seg, size: b.size });
    return { seg, ext };
  }

  async uploadRuns(items: readonly DirtyRuns[]): Promise<Uploaded> {
    const pieces: Array<[number, number, Buffer]> = [];
    for (const it of items) for (const [off, data] of it.runs) pieces.push([it.index, off, data]);
    const { seg, ext } = await this.writeSegment(pieces);
    return { indices: items.map((i) => i.index), kind: 'runs', seg, ext } as Up;
  }

  stage(u: Uploaded, keep: (index: number) => boolean): number {
    const up = u as Up;
    let epoch = 0;
    if (up.kind === 'base') {
      const index = up.indices[0]!;
      if (keep(index)) epoch = this.manifest.stageBase(index, up.base);
      else if (up.base) this.manifest.discard(keys.chunk(this.prefix, up.base.id));
      return epoch;
    }
    for (const [index, exts] of up.ext) if (keep(index)) epoch = Math.max(epoch, this.manifest.stageExtents(index, exts));
    if (up.seg) this.manifest.finishSegment(up.seg);
    return epoch || this.manifest.stagedEpochNow;
  }

  unmap(index: number): number {
    return this.manifest.stageBase(index, null);
  }

  async commit(): Promise<number> {
    if (!this.gate.mayMutate()) throw new Error(`not writing a manifest without a valid writer lease (${this.gate.role()})`);
    return this.manifest.commit();
  }

  get commitCost(): number {
    return this.manifest.commitCost;
  }

  get hasUncommitted(): boolean {
    return this.manifest.hasUncommitted;
  }

  async collect(): Promise<void> {
    if (this.gate.mayMutate()) await this.manifest.collect();
  }

  /**
   * Rewrites the live extents of segments below COMPACT_BELOW live into one fresh segment (so GC can free them),
   * or else one chunk overlaid by more than CHUNK_EXTENT_LIMIT extents as a whole-chunk object.
   */
  async compact(timeoutMs = 30_000): Promise<boolean> {
    const victims = this.manifest.compactionCandidates(COMPACT_BELOW, SEGMENT_MAX);
    if (victims.length === 0) return this.compactChunk(timeoutMs);
    const live: Array<[string, number, Extent]> = [];
    const needs = new Map<string, Need[]>();
    for (const v of victims) {
      const key = keys.segment(this.prefix, v);
      const l: Need[] = [];
      for (const [index, x] of this.manifest.liveExtents(v)) {
        live.push([v, index, x]);
        if (!l.some((n) => n.at === x.at)) l.push({ at: x.at, rlen: x.rlen, crc: x.crc, what: `compaction of segment ${v} @${x.at}` });
      }
      needs.set(key, l);
    }
    const recs = await this.fetchRecords(needs, timeoutMs);
    const pieces: Array<[number, number, Buffer]> = live.map(([v, index, x]) =>
      [index, x.off, recs.get(keys.segment(this.prefix, v))!.get(x.at)!.subarray(x.skip, x.skip + x.len)]);
    const { seg, ext } = await this.writeSegment(pieces);
    // Pieces were written in `live` order, one extent each (a piece never exceeds one record).
    const cursor = new Map<number, number>();
    for (const [v, index] of live) {
      const n = cursor.get(index) ?? 0;
      cursor.set(index, n + 1);
      const nx = ext.get(index)![n]!;
      this.manifest.stageMoved(index, v, nx);
      this.compactedBytes += nx.len;
    }
    if (seg) this.manifest.finishSegment(seg);
    this.log.debug({ segments: victims.length, bytes: pieces.reduce((a, p) => a + p[2].length, 0) }, 'object volume: compacted segments');
    return true;
  }

  private async compactChunk(timeoutMs: number): Promise<boolean> {
    const index = this.manifest.fragmentedChunk(CHUNK_EXTENT_LIMIT);
    if (index === undefined) return false;
    const v = this.manifest.version(index);
    const data = await this.read(index, 0, this.chunkSize, timeoutMs);
    const up = await this.uploadChunk(index, data);
    this.compactedBytes += this.chunkSize;
    // Written meanwhile: the newer mapping wins and this copy is garbage.
    this.stage(up, () => this.manifest.version(index) === v);
    return true;
  }
}
