// docs/bucket-format.md §Chunk maps: a chunk is an optional whole-chunk base object overlaid by sorted,
// non-overlapping extents that point into log segments (or read as zeros). Newer extents cut older ones.
import type { ChunkMap, Extent } from './format.js';

/** Piece of an extent cut to [from, to) of the chunk (same record, skip moved along). */
export function cutExtent(x: Extent, from: number, to: number): Extent {
  const off = Math.max(x.off, from);
  const end = Math.min(x.off + x.len, to);
  return { ...x, off, len: end - off, skip: x.skip + (off - x.off) };
}

/**
 * Lays `x` over the map. Returns the bytes each segment lost (for live accounting). A zero extent over a chunk
 * without a base is not stored: that range already reads as zeros.
 */
export function overlay(map: ChunkMap, x: Extent): Array<[obj: string, bytes: number]> {
  const lost: Array<[string, number]> = [];
  const end = x.off + x.len;
  const out: Extent[] = [];
  for (const e of map.ext) {
    const eEnd = e.off + e.len;
    if (eEnd <= x.off || e.off >= end) { out.push(e); continue; }
    const covered = Math.min(eEnd, end) - Math.max(e.off, x.off);
    if (e.obj !== null) lost.push([e.obj, covered]);
    if (e.off < x.off) out.push(cutExtent(e, e.off, x.off));
    if (eEnd > end) out.push(cutExtent(e, end, eEnd));
  }
  if (x.obj !== null || map.base !== null) out.push(x);
  out.sort((a, b) => a.off - b.off);
  map.ext = out;
  return lost;
}

export type Piece =
  | { kind: 'zero'; off: number; len: number }
  | { kind: 'base'; off: number; len: number }
  | { kind: 'ext'; off: number; len: number; x: Extent };

/** What covers chunk bytes [off, off+len), in order. */
export function plan(map: ChunkMap | undefined, off: number, len: number): Piece[] {
  const end = off + len;
  const out: Piece[] = [];
  const gap = (from: number, to: number): void => {
    if (to > from) out.push(map?.base ? { kind: 'base', off: from, len: to - from } : { kind: 'zero', off: from, len: to - from });
  };
  let pos = off;
  for (const x of map?.ext ?? []) {
    const xEnd = x.off + x.len;
    if (xEnd <= pos) continue;
    if (x.off >= end) break;
    gap(pos, Math.min(x.off, end));
    const c = cutExtent(x, Math.max(x.off, pos), Math.min(xEnd, end));
    out.push(x.obj === null ? { kind: 'zero', off: c.off, len: c.len } : { kind: 'ext', off: c.off, len: c.len, x: c });
    pos = c.off + c.len;
  }
  gap(pos, end);
  return out;
}

/** Distinct objects a chunk map references. */
export function objectsOf(map: ChunkMap): Set<string> {
  const s = new Set<string>();
  for (const x of map.ext) if (x.obj !== null) s.add(x.obj);
  return s;
}
