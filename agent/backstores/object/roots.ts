// docs/bucket-format.md §Manifests, §Format 1: finding the newest root (highest epoch, then generation; format 1
// roots when no format 2 root exists), reading its pages, and the set of objects retained roots reference.
import type { Bucket } from './bucket.js';
import { crc32c } from '../../lib/crc32c.js';
import {
  keys, parseJson, snapshotNameOf, decodeRootV1, decodePageV1, decodeRootV2, decodePageV2, generationOfManifestKey, rootKeyOrder,
  type ChunkMap, type RootV1, type RootV2,
} from './format.js';

export interface LoadedRoot {
  key: string;
  version: 1 | 2;
  epoch: number;
  generation: number;
  chunks: Map<number, ChunkMap>;
  /** Format 2: page index → [id, crc]. */
  pages: Map<number, [string, number]>;
  /** Format 1: its page objects (superseded once the volume is upgraded). */
  objectKeys: string[];
}

async function getJson(bucket: Bucket, key: string, timeoutMs: number, crc?: number): Promise<unknown> {
  const buf = await bucket.get(key, timeoutMs);
  if (!buf) throw new Error(`${key} is missing from the bucket`);
  if (crc !== undefined && crc32c(buf) !== crc) throw new Error(`${key}: checksum mismatch (corrupt object)`);
  return parseJson(buf, key);
}

function checkGeometry(root: RootV1 | RootV2, key: string, chunkSize: number): void {
  if (root.chunk_size !== chunkSize) throw new Error(`${key}: chunk geometry differs from the volume's`);
}

/** Reads a root (either format) and all its pages. */
export async function readRoot(bucket: Bucket, prefix: string, key: string, chunkSize: number, timeoutMs: number, body?: unknown): Promise<LoadedRoot> {
  const v = body ?? await getJson(bucket, key, timeoutMs);
  const chunks = new Map<number, ChunkMap>();
  if ((v as { version?: number })?.version === 1) {
    const root = decodeRootV1(v);
    checkGeometry(root, key, chunkSize);
    const objectKeys: string[] = [];
    for (const [p, id] of Object.entries(root.pages)) {
      const pk = keys.page(prefix, id);
      objectKeys.push(pk);
      const page = decodePageV1(await getJson(bucket, pk, timeoutMs), Number(p));
      for (const [i, cid] of Object.entries(page.chunks)) chunks.set(Number(i), { base: { id: cid, crcs: null }, ext: [] });
    }
    return { key, version: 1, epoch: 0, generation: root.generation, chunks, pages: new Map(), objectKeys };
  }
  const root = decodeRootV2(v);
  checkGeometry(root, key, chunkSize);
  const pages = new Map<number, [string, number]>();
  const entries = Object.entries(root.pages);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(8, entries.length) }, async () => {
    while (next < entries.length) {
      const [p, [id, crc]] = entries[next++]!;
      pages.set(Number(p), [id, crc]);
      const page = decodePageV2(await getJson(bucket, keys.page(prefix, id), timeoutMs, crc), Number(p), chunkSize);
      for (const [i, c] of page) chunks.set(i, c);
    }
  }));
  return { key, version: 2, epoch: root.epoch, generation: root.generation, chunks, pages, objectKeys: [] };
}

/** The newest root: format 2 roots first (key order is epoch, then generation, newest first), else format 1. */
export async function loadNewestRoot(bucket: Bucket, prefix: string, chunkSize: number, timeoutMs: number): Promise<LoadedRoot | null> {
  const v2 = await bucket.list(keys.roots(prefix), 1, timeoutMs);
  if (v2.length && rootKeyOrder(v2[0]!)) return readRoot(bucket, prefix, v2[0]!, chunkSize, timeoutMs);
  const v1 = await bucket.list(keys.manifests(prefix), 1, timeoutMs);
  if (v1.length && generationOfManifestKey(v1[0]!) !== undefined) return readRoot(bucket, prefix, v1[0]!, chunkSize, timeoutMs);
  return null;
}

/** Keys of every object a root names (pages and data objects). */
export function keysOf(prefix: string, r: LoadedRoot): string[] {
  const out = [...r.objectKeys];
  for (const [id] of r.pages.values()) out.push(keys.page(prefix, id));
  for (const c of r.chunks.values()) {
    if (c.base) out.push(keys.chunk(prefix, c.base.id));
    for (const x of c.ext) if (x.obj !== null) out.push(keys.segment(prefix, x.obj));
  }
  return out;
}

/** What the retained roots (the newest `retain`) and every snapshot reference, and the roots past the window. */
export async function referencedKeys(bucket: Bucket, prefix: string, chunkSize: number, retain: number, timeoutMs: number):
  Promise<{ live: Set<string>; snapshotKeys: Set<string>; oldRoots: string[] }> {
  const rootKeys = [...await bucket.list(keys.roots(prefix), Infinity, timeoutMs), ...await bucket.list(keys.manifests(prefix), Infinity, timeoutMs)];
  const live = new Set<string>();
  const kept = rootKeys.slice(0, retain);
  for (const key of kept) {
    live.add(key);
    for (const k of keysOf(prefix, await readRoot(bucket, prefix, key, chunkSize, timeoutMs))) live.add(k);
  }
  const snapshotKeys = await snapshotReferences(bucket, prefix, chunkSize, timeoutMs);
  for (const k of snapshotKeys) live.add(k);
  return { live, snapshotKeys, oldRoots: rootKeys.slice(retain) };
}

/** Keys of the snapshot objects of the volume at `prefix` (not their dependent records). */
export async function snapshotObjectKeys(bucket: Bucket, prefix: string, timeoutMs: number): Promise<string[]> {
  return (await bucket.list(keys.snapshots(prefix), Infinity, timeoutMs)).filter((k) => snapshotNameOf(prefix, k) !== undefined);
}

/** Every object (pages, data, the snapshot objects themselves) that a snapshot of the volume references. */
export async function snapshotReferences(bucket: Bucket, prefix: string, chunkSize: number, timeoutMs: number): Promise<Set<string>> {
  const out = new Set<string>();
  for (const key of await snapshotObjectKeys(bucket, prefix, timeoutMs)) {
    for (const k of keysOf(prefix, await readRoot(bucket, prefix, key, chunkSize, timeoutMs))) out.add(k);
  }
  return out;
}
