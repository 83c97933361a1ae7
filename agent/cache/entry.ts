// Block cache: one cached chunk (a file <index>-<n> under chunks/) and its state.
import { open, type FileHandle } from 'node:fs/promises';
import type { WriteBatcher } from '../backstores/write-batcher.js';
import { Mutex } from './mutex.js';
import type { SectorBitmap } from './bitmap.js';

export interface Entry {
  readonly index: number;
  readonly path: string;
  readonly file: string;
  /** Valid sectors; null: the whole chunk is valid. */
  valid: SectorBitmap | null;
  /** Sectors written since the last upload captured them (null: none). Their runs are what the next upload sends. */
  written: SectorBitmap | null;
  /** When `written` went from empty to non-empty (ms): how long small writes have waited to share a segment. */
  writtenSince: number;
  /** Newer than anything uploaded. */
  dirty: boolean;
  /** Bumped by every mutation, so an upload knows whether it captured the newest content. */
  seq: number;
  /** When the chunk first held data the bucket's manifest lacks (0: none). The RPO figure. */
  dirtySince: number;
  /** Last write (ms): uploads wait for a chunk to settle so that rewrites coalesce. */
  lastWrite: number;
  /** Uploaded and staged at this epoch, not yet in a written manifest (0: nothing pending). */
  stagedEpoch: number;
  /** Named by the durable journal (must not be evicted until a journal round drops it). */
  journaled: boolean;
  /** The valid map the journal names for it (base64, null: whole), as synced: what a trim round names again. */
  journaledValid: string | null;
  uploading: boolean;
  /** Bytes an upload in progress took out of `written` (still not in the bucket: counted as dirty). */
  capturedBytes: number;
  /** Readers/writers using the file right now (pins against eviction). */
  users: number;
  readonly lock: Mutex;
  /** Resolves when the file exists with its initial content. */
  ready: Promise<void>;
  removed: boolean;
}

export function newEntry(index: number, dir: string, file: string): Entry {
  return {
    index, file, path: `${dir}/${file}`, valid: null, written: null, writtenSince: 0, dirty: false, seq: 0, dirtySince: 0, lastWrite: 0, stagedEpoch: 0,
    journaled: false, journaledValid: null, uploading: false, capturedBytes: 0, users: 0, lock: new Mutex(), ready: Promise.resolve(), removed: false,
  };
}

/**
 * Open chunk files, kept across reads and writes: opening and closing a file per 4 KiB read cost more
 * than the read itself. Bounded LRU; a handle in use is never closed under its user.
 */
const MAX_OPEN = 256;
interface Slot { fh: Promise<FileHandle>; users: number; closing?: boolean; fd?: number }
const handles = new Map<string, Slot>();

/** Marks `slot` most recently used and in use; the returned function ends that use. */
function pin(path: string, slot: Slot): () => void {
  handles.delete(path); // re-insert: Map order is the LRU order
  handles.set(path, slot);
  slot.users++;
  return () => {
    slot.users--;
    if (handles.size > MAX_OPEN) trimHandles();
  };
}

async function withHandle<T>(path: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
  let slot = handles.get(path);
  if (!slot) {
    const s: Slot = (slot = { fh: open(path, 'r+'), users: 0 });
    s.fh.then((fh) => { s.fd = fh.fd; }, () => { if (handles.get(path) === s) handles.delete(path); });
  }
  const unpin = pin(path, slot);
  try {
    return await fn(await slot.fh);
  } finally {
    unpin();
  }
}

function trimHandles(): void {
  for (const [path, slot] of handles) {
    if (handles.size <= MAX_OPEN) return;
    if (slot.users > 0) continue;
    handles.delete(path);
    void slot.fh.then((fh) => fh.close(), () => undefined).catch(() => undefined);
  }
}

/**
 * The descriptor of `path`'s open cached handle, for a synchronous read on the event loop (the cached
 * read fast path, issue 15). A slot leaves the map before its handle is closed, so a descriptor
 * returned here is still open when it is used at once (never kept across a turn).
 */
export function openFd(path: string): number | undefined {
  return handles.get(path)?.fd;
}

/**
 * The write fast path's writeAt (issue 17): when `path`'s handle is open, its write joins the batcher's next
 * batch at once, the handle pinned until it settles; undefined (nothing done) when it is not open yet.
 */
export function writeAtOpen(path: string, bufs: readonly Buffer[], length: number, pos: number, batcher: WriteBatcher): Promise<void> | undefined {
  const slot = handles.get(path);
  if (slot?.fd === undefined) return undefined;
  const unpin = pin(path, slot);
  const p = batcher.write(slot.fd, pos, bufs, length);
  p.then(unpin, unpin);
  return p;
}

/** Closes the cached handle of a chunk file about to be removed or replaced. */
export async function forgetHandle(path: string): Promise<void> {
  const slot = handles.get(path);
  if (!slot) return;
  handles.delete(path);
  await slot.fh.then((fh) => fh.close(), () => undefined).catch(() => undefined);
}

/** Closes every cached handle below `dir` (the cache is closing). */
export async function forgetHandlesUnder(dir: string): Promise<void> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  await Promise.all([...handles.keys()].filter((p) => p.startsWith(prefix)).map((p) => forgetHandle(p)));
}

/** Reads [pos, pos+dst.length) of the file into dst; bytes past EOF read as zeros (files are sparse). */
export async function readInto(path: string, dst: Buffer, pos: number): Promise<void> {
  await withHandle(path, async (fh) => {
    let done = 0;
    while (done < dst.length) {
      const { bytesRead } = await fh.read(dst, done, dst.length - done, pos + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done < dst.length) dst.fill(0, done);
  });
}

/**
 * Positional writev of `bufs` at `pos`, completing short writes. With `batcher` (the cache's writer thread,
 * agent/backstores/write-batcher.ts), the write joins the batch of its event-loop turn instead of taking a
 * threadpool job of its own.
 */
export async function writeAt(path: string, bufs: readonly Buffer[], pos: number, batcher?: WriteBatcher): Promise<void> {
  await withHandle(path, async (fh) => {
    let total = 0;
    for (const b of bufs) total += b.length;
    if (batcher && total > 0) return batcher.write(fh.fd, pos, bufs, total);
    let { bytesWritten } = await fh.writev(bufs as Buffer[], pos);
    while (bytesWritten < total) {
      // Rare short write: finish buffer by buffer from where it stopped.
      let skip = bytesWritten;
      for (const b of bufs) {
        if (skip >= b.length) { skip -= b.length; continue; }
        const part = b.subarray(skip);
        skip = 0;
        const r = await fh.write(part, 0, part.length, pos + bytesWritten);
        bytesWritten += r.bytesWritten;
        break;
      }
    }
  });
}
