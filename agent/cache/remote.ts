// Block cache: what the cache needs from the store beneath it (the object backstore's bucket + manifest).
export interface ChunkRemote {
  /** Id of the chunk object the staged manifest names for `index` (undefined: all zeros). */
  idOf(index: number): string | undefined;
  /** The whole chunk as the bucket holds it (id from idOf at call time); throws on failure or after `timeoutMs`. */
  fetch(index: number, timeoutMs: number): Promise<{ id: string | undefined; data: Buffer }>;
  /** Uploads a new immutable chunk object; returns its id. */
  upload(index: number, data: Buffer): Promise<string>;
  /** Stages index → id (null: zero/unmapped) for the next manifest; returns the stage epoch. */
  stage(index: number, id: string | null): number;
  /** An uploaded object that will not be staged. */
  discard(id: string): void;
  /** Writes a manifest naming everything staged; returns the epoch it covers. */
  commit(): Promise<number>;
  /** Whether anything is staged but not yet in a written manifest. */
  readonly hasUncommitted: boolean;
  /** Garbage collection after a commit. */
  collect(): Promise<void>;
}
