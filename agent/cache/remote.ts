// Block cache: what the cache needs from the store beneath it (the object backstore's bucket + manifest).

/** Dirty bytes of one chunk to upload: runs of [chunk offset, data]. */
export interface DirtyRuns { index: number; runs: Array<[off: number, data: Buffer]> }

/** An upload done, to be staged for the chunks still wanting it. */
export interface Uploaded { readonly indices: readonly number[] }

export interface ChunkRemote {
  /** Whether the staged manifest holds any data for chunk `index` (false: it reads as zeros). */
  hasData(index: number): boolean;
  /** A name for chunk `index`'s committed bytes, stable across restarts while its mapping is (undefined: no data). */
  identity(index: number): string | undefined;
  /** Changes whenever chunk `index`'s mapping changes. */
  version(index: number): number;
  /** Chunk bytes [off, off+len) as the staged manifest maps them (one ranged GET per object touched). */
  read(index: number, off: number, len: number, timeoutMs: number): Promise<Buffer>;
  /** Uploads a whole chunk as one object. */
  uploadChunk(index: number, data: Buffer): Promise<Uploaded>;
  /** Packs dirty runs of many chunks into one log segment and uploads it. */
  uploadRuns(items: readonly DirtyRuns[]): Promise<Uploaded>;
  /** Stages an upload for the chunks `keep` accepts (the others were unmapped meanwhile); returns the stage epoch. */
  stage(u: Uploaded, keep: (index: number) => boolean): number;
  /** Stages chunk `index` as unmapped (zeros); returns the stage epoch. */
  unmap(index: number): number;
  /** Writes a manifest naming everything staged; returns the epoch it covers. */
  commit(): Promise<number>;
  /** Estimated bytes the next manifest write would upload. */
  readonly commitCost: number;
  /** Whether anything is staged but not yet in a written manifest. */
  readonly hasUncommitted: boolean;
  /** Garbage collection after a commit. */
  collect(): Promise<void>;
  /** One round of background compaction; resolves true when it staged something. */
  compact(): Promise<boolean>;
}
