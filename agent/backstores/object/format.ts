// docs/bucket-format.md: object keys, the volume descriptor, manifest roots and pages (format 2; format 1 read).
import { randomBytes } from 'node:crypto';
import { crc32c } from '../../lib/crc32c.js';

export const FORMAT_VERSION = 2;
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
export const BLOCK_SIZE = 512;
/** Format 1: chunk entries per page (4 GiB of volume). */
export const PAGE_CHUNKS_V1 = 1024;
/** Format 2: chunk entries per page (256 MiB of volume): small pages keep a manifest write proportional to what changed. */
export const PAGE_CHUNKS = 64;
/** A record (the unit of checksum and encryption) holds at most this many plaintext bytes. */
export const RECORD_SIZE = 64 * 1024;
/** Generations and epochs are stored inverted so that a ListObjectsV2 with MaxKeys=1 returns the newest root. */
const GEN_MAX = 0xffffffffffffn;
const EPOCH_MAX = 0xffffffffn;

export interface EncryptionInfo {
  algorithm: 'AES-256-GCM';
  /** HMAC-SHA256(key, "outpost-key-check"), first 16 bytes hex: tells a wrong key from a corrupt object. */
  key_check: string;
}

export interface VolumeDescriptor {
  format: 'outpost-volume';
  version: number;
  size: number;
  chunk_size: number;
  block_size: number;
  page_chunks: number;
  wwn: string | null;
  created: string;
  /** Format 2: writer epoch of the agent that wrote this descriptor (0: none recorded). */
  epoch?: number;
  /** Format 2: present when data records are encrypted. */
  encryption?: EncryptionInfo | null;
  /** A clone: the volume (prefix in the same bucket) and snapshot its first root was made from. */
  origin?: { prefix: string; snapshot: string; generation: number } | null;
}

/** A whole-chunk object: `records` crc32c values, one per RECORD_SIZE of the chunk, over the stored bytes. */
export interface BaseRef { id: string; crcs: number[] | null }

/**
 * An extent of a chunk stored in a segment: chunk bytes [off, off+len) are plaintext bytes [skip, skip+len)
 * of the record stored at segment bytes [at, at+rlen) whose crc32c is `crc`. obj null: the range reads as zeros.
 */
export interface Extent { off: number; len: number; obj: string | null; at: number; rlen: number; skip: number; crc: number }

export interface ChunkMap { base: BaseRef | null; ext: Extent[] }

export interface RootV2 {
  format: 'outpost-manifest';
  version: 2;
  epoch: number;
  generation: number;
  created: string;
  size: number;
  chunk_size: number;
  page_chunks: number;
  /** page index (decimal string) → [page object id, crc32c of the page body]. */
  pages: Record<string, [string, number]>;
}

/** Page body: chunk index → [base id | null, base crcs | null, extents as [off, len, obj, at, rlen, skip, crc]]. */
export interface PageV2 {
  format: 'outpost-page';
  version: 2;
  page: number;
  objects: string[];
  chunks: Record<string, [number, number[] | null, Array<[number, number, number, number, number, number, number]>]>;
}

export interface RootV1 {
  format: 'outpost-manifest';
  version: 1;
  generation: number;
  /** Writer epoch (docs/writer-lease.md); absent in roots written before leases. */
  epoch?: number;
  created: string;
  size: number;
  chunk_size: number;
  page_chunks: number;
  pages: Record<string, string>;
}

export interface PageV1 { format: 'outpost-page'; version: 1; page: number; chunks: Record<string, string> }

/**
 * The key of data object `id`: a plain id names an object of this volume; `<prefix>#<id>` (a clone's reference
 * into the volume it was cloned from, §Snapshot, clone) names one of the volume at `<prefix>` in the same bucket.
 */
function dataKey(prefix: string, kind: 'chunks' | 'segments', id: string): string {
  const h = id.lastIndexOf('#');
  return h < 0 ? `${prefix}${kind}/${id}` : `${id.slice(0, h)}${kind}/${id.slice(h + 1)}`;
}

/** Whether `id` names an object of another volume (`<prefix>#<id>`): such objects are never deleted here. */
export function isForeignId(id: string): boolean {
  return id.includes('#');
}

/** Names object `id` of the volume at `prefix` from another volume's pages (ids already foreign stay as they are). */
export function foreignId(prefix: string, id: string): string {
  return isForeignId(id) ? id : `${prefix}#${id}`;
}

/** Snapshot names: letters, digits, '_', '-' (so `<name>.json` and `<name>.clones/` never collide). */
export const SNAPSHOT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export const keys = {
  descriptor: (prefix: string) => `${prefix}volume.json`,
  chunk: (prefix: string, id: string) => dataKey(prefix, 'chunks', id),
  segment: (prefix: string, id: string) => dataKey(prefix, 'segments', id),
  page: (prefix: string, id: string) => `${prefix}pages/${id}`,
  /** Format 1 roots. */
  manifests: (prefix: string) => `${prefix}manifests/`,
  manifest: (prefix: string, generation: number) =>
    `${prefix}manifests/${(GEN_MAX - BigInt(generation)).toString(16).padStart(12, '0')}.json`,
  /** Format 2 roots, ordered by (epoch, generation), newest first. */
  roots: (prefix: string) => `${prefix}roots/`,
  root: (prefix: string, epoch: number, generation: number) =>
    `${prefix}roots/${(EPOCH_MAX - BigInt(epoch)).toString(16).padStart(8, '0')}-${(GEN_MAX - BigInt(generation)).toString(16).padStart(12, '0')}.json`,
  snapshots: (prefix: string) => `${prefix}snapshots/`,
  snapshot: (prefix: string, name: string) => `${prefix}snapshots/${name}.json`,
  /** Dependents of a snapshot: one object per clone (or read-only export) that reads its objects. */
  dependents: (prefix: string, name: string) => `${prefix}snapshots/${name}.clones/`,
} as const;

/** The snapshot name of a key under `<prefix>snapshots/` that is a snapshot object (not a dependent record). */
export function snapshotNameOf(prefix: string, key: string): string | undefined {
  const m = /^snapshots\/([A-Za-z0-9_-]+)\.json$/.exec(key.slice(prefix.length));
  return key.startsWith(prefix) && m ? m[1] : undefined;
}

/** Whether `key` is one of this volume's own chunk, segment or page objects or roots (not another volume's). */
export function ownsKey(prefix: string, key: string): boolean {
  if (!key.startsWith(prefix)) return false;
  return /^(?:(?:chunks|segments|pages)\/[0-9a-f]{32}|(?:roots|manifests)\/[0-9a-f-]+\.json)$/.test(key.slice(prefix.length));
}

export function generationOfManifestKey(key: string): number | undefined {
  const m = /manifests\/([0-9a-f]{12})\.json$/.exec(key);
  return m ? Number(GEN_MAX - BigInt(`0x${m[1]}`)) : undefined;
}

export function rootKeyOrder(key: string): { epoch: number; generation: number } | undefined {
  const m = /roots\/([0-9a-f]{8})-([0-9a-f]{12})\.json$/.exec(key);
  return m ? { epoch: Number(EPOCH_MAX - BigInt(`0x${m[1]}`)), generation: Number(GEN_MAX - BigInt(`0x${m[2]}`)) } : undefined;
}

/** A content-independent unique id: 16 random bytes, hex. Objects are never rewritten in place. */
export function newObjectId(): string {
  return randomBytes(16).toString('hex');
}

const ID_RE = /^[0-9a-f]{32}$/;
/** A page's object table: own ids, or `<prefix>#<id>` for objects of the volume a clone started from. */
const OBJECT_REF_RE = /^(?:(?:[^#\s]+\/)?#)?[0-9a-f]{32}$/;

export function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** Metadata framing (format 2): the JSON text, a newline, then the crc32c of the JSON bytes as 8 hex digits. */
export function frameJson(v: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(v));
  return Buffer.concat([body, Buffer.from(`\n${crc32c(body).toString(16).padStart(8, '0')}\n`)]);
}

/** Parses a metadata object; format 2 bodies carry a checksum line, format 1 bodies are bare JSON. */
export function parseJson(buf: Buffer, what: string): unknown {
  let text = buf;
  const nl = buf.indexOf(0x0a);
  if (nl >= 0 && nl < buf.length - 1) {
    const tail = buf.subarray(nl + 1).toString('utf8').trim();
    text = buf.subarray(0, nl);
    if (!/^[0-9a-f]{8}$/.test(tail) || parseInt(tail, 16) !== crc32c(text)) throw new Error(`${what}: checksum mismatch (corrupt object)`);
  }
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new Error(`${what} is not valid JSON`, { cause: e });
  }
}

export function decodeDescriptor(v: unknown): VolumeDescriptor {
  const d = v as Partial<VolumeDescriptor>;
  if (!d || d.format !== 'outpost-volume') throw new Error('volume.json: not an outpost volume descriptor');
  if (d.version !== 1 && d.version !== 2) throw new Error(`volume.json: unsupported format version ${String(d.version)}`);
  for (const k of ['size', 'chunk_size', 'block_size', 'page_chunks'] as const) {
    if (!Number.isSafeInteger(d[k]) || (d[k] as number) <= 0) throw new Error(`volume.json: bad ${k}`);
  }
  return d as VolumeDescriptor;
}

export function decodeRootV1(v: unknown): RootV1 {
  const m = v as Partial<RootV1>;
  if (!m || m.format !== 'outpost-manifest' || m.version !== 1) throw new Error('manifest: bad format/version');
  if (!Number.isSafeInteger(m.generation) || typeof m.pages !== 'object' || m.pages === null) throw new Error('manifest: bad fields');
  for (const [k, id] of Object.entries(m.pages)) {
    if (!/^\d+$/.test(k) || typeof id !== 'string' || !ID_RE.test(id)) throw new Error(`manifest: bad page entry ${k}`);
  }
  return m as RootV1;
}

export function decodePageV1(v: unknown, page: number): PageV1 {
  const p = v as Partial<PageV1>;
  if (!p || p.format !== 'outpost-page' || p.version !== 1 || p.page !== page) throw new Error(`manifest page ${page}: bad header`);
  if (typeof p.chunks !== 'object' || p.chunks === null) throw new Error(`manifest page ${page}: no chunks`);
  for (const [k, id] of Object.entries(p.chunks)) {
    const i = Number(k);
    if (!Number.isSafeInteger(i) || Math.floor(i / PAGE_CHUNKS_V1) !== page || typeof id !== 'string' || !ID_RE.test(id)) {
      throw new Error(`manifest page ${page}: bad chunk entry ${k}`);
    }
  }
  return p as PageV1;
}

export function decodeRootV2(v: unknown): RootV2 {
  const m = v as Partial<RootV2>;
  if (!m || m.format !== 'outpost-manifest' || m.version !== 2) throw new Error('manifest root: bad format/version');
  if (!Number.isSafeInteger(m.generation) || !Number.isSafeInteger(m.epoch) || typeof m.pages !== 'object' || m.pages === null) {
    throw new Error('manifest root: bad fields');
  }
  for (const [k, ref] of Object.entries(m.pages)) {
    if (!/^\d+$/.test(k) || !Array.isArray(ref) || typeof ref[0] !== 'string' || !ID_RE.test(ref[0]) || !Number.isSafeInteger(ref[1])) {
      throw new Error(`manifest root: bad page entry ${k}`);
    }
  }
  return m as RootV2;
}

/** Decodes a format 2 page into chunk maps, checking every field a reader relies on. */
export function decodePageV2(v: unknown, page: number, chunkSize: number): Map<number, ChunkMap> {
  const p = v as Partial<PageV2>;
  if (!p || p.format !== 'outpost-page' || p.version !== 2 || p.page !== page) throw new Error(`manifest page ${page}: bad header`);
  if (!Array.isArray(p.objects) || p.objects.some((id) => typeof id !== 'string' || !OBJECT_REF_RE.test(id)) || typeof p.chunks !== 'object' || !p.chunks) {
    throw new Error(`manifest page ${page}: bad object table`);
  }
  const objects = p.objects;
  const out = new Map<number, ChunkMap>();
  const records = Math.ceil(chunkSize / RECORD_SIZE);
  for (const [k, entry] of Object.entries(p.chunks)) {
    const i = Number(k);
    const bad = (): never => { throw new Error(`manifest page ${page}: bad chunk entry ${k}`); };
    if (!Number.isSafeInteger(i) || Math.floor(i / PAGE_CHUNKS) !== page || !Array.isArray(entry) || entry.length !== 3) bad();
    const [b, crcs, exts] = entry;
    let base: BaseRef | null = null;
    if (b >= 0) {
      if (!Number.isSafeInteger(b) || b >= objects.length) bad();
      if (crcs !== null && (!Array.isArray(crcs) || crcs.length !== records)) bad();
      base = { id: objects[b]!, crcs };
    }
    if (!Array.isArray(exts)) bad();
    let end = 0;
    const ext: Extent[] = exts.map((x) => {
      if (!Array.isArray(x) || x.length !== 7 || !x.every((n) => Number.isSafeInteger(n))) bad();
      const [off, len, o, at, rlen, skip, crc] = x;
      if (off < end || len <= 0 || off + len > chunkSize || o >= objects.length) bad();
      end = off + len;
      return { off, len, obj: o < 0 ? null : objects[o]!, at, rlen, skip, crc };
    });
    out.set(i, { base, ext });
  }
  return out;
}

/** Encodes chunk maps as a format 2 page (objects named once in a table, extents as number arrays). */
export function encodePageV2(page: number, chunks: Map<number, ChunkMap>): PageV2 {
  const objects: string[] = [];
  const index = new Map<string, number>();
  const ref = (id: string): number => {
    let n = index.get(id);
    if (n === undefined) { n = objects.length; objects.push(id); index.set(id, n); }
    return n;
  };
  const out: PageV2['chunks'] = {};
  for (const [i, c] of [...chunks].sort((a, b) => a[0] - b[0])) {
    out[String(i)] = [c.base ? ref(c.base.id) : -1, c.base ? c.base.crcs : null,
      c.ext.map((x) => [x.off, x.len, x.obj === null ? -1 : ref(x.obj), x.at, x.rlen, x.skip, x.crc])];
  }
  return { format: 'outpost-page', version: 2, page, objects, chunks: out };
}
