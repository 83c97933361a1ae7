// An in-memory ChunkRemote (our own interface, the chunk store beneath the block cache) whose uploads wait until
// the test lets them go: "full of dirty data" is then a state a test holds, not a race it hopes to win.
import type { ChunkRemote, DirtyRuns, Uploaded } from '../../../agent/cache/remote.js';

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

