// An in-memory ChunkRemote (our own interface, the chunk store beneath the block cache) whose uploads wait until
// the test lets them go: "full of dirty data" is then a state a test holds, not a race it hopes to win.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkCache } from '../../../agent/cache/chunk-cache.js';
import type { ChunkRemote, DirtyRuns, Uploaded } from '../../../agent/cache/remote.js';
import { silentLogger } from '../../../agent/lib/log.js';

export const CHUNK = 4 * 1024 * 1024;

/** Chunks in memory; uploads resolve only after release(). */
export function heldRemote(base: Map<number, Buffer>): ChunkRemote & { release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let epoch = 0;
  return {
    release,
    hasData: (i) => base.has(i),
    identity: (i) => (base.has(i) ? `c${i}` : undefined),
    version: () => 1,
    read: async (i, off, len) => Buffer.from((base.get(i) ?? Buffer.alloc(CHUNK)).subarray(off, off + len)),
    uploadChunk: async (i: number): Promise<Uploaded> => { await gate; return { indices: [i] }; },
    uploadRuns: async (items: readonly DirtyRuns[]): Promise<Uploaded> => { await gate; return { indices: items.map((x) => x.index) }; },
    stage: () => ++epoch,
    unmap: () => ++epoch,
    commit: async () => epoch,
    commitCost: 0,
    get hasUncommitted() { return false; },
    collect: async () => undefined,
    compact: async () => false,
  };
}


/**
 * A write-back cache of `chunks` chunks in a fresh directory over a held remote (nothing is uploaded, no timer
 * fires during a test); `dispose` lets the uploads go, closes the cache and removes the directory.
 */
export async function heldCache(name: string, chunks: number): Promise<{ cache: ChunkCache; dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `outpost-${name}-`));
  const remote = heldRemote(new Map());
  const cache = await ChunkCache.open({
    dir, size: chunks * CHUNK, chunkSize: CHUNK, capacity: chunks * CHUNK, writeBack: true, remote, readTimeoutMs: 5000,
    uploadConcurrency: 2, retryBaseMs: 50, retryMaxMs: 500, commitIntervalMs: 60_000, uploadDelayMs: 60_000, readAhead: 0,
    writeTimeoutMs: 5000, log: silentLogger,
  });
  return {
    cache, dir,
    dispose: async () => {
      remote.release();
      await cache.close(5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
