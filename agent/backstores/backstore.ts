// Backstore contract: byte-offset storage that knows nothing of SCSI (the gotgt model).
// I/O errors are thrown as BackstoreError; the target core maps them to sense in one place.

export const BackstoreErrorCode = {
  /** Medium error: the data could not be read or written. */
  IO: 'EIO',
  /** Out of space on the backing store (thin provisioning exhausted). */
  NO_SPACE: 'ENOSPC',
  /** The store cannot serve this now but may soon (bucket unreachable, cache recovering). Retryable. */
  NOT_READY: 'ENOTREADY',
  /** Offset/length outside the store. A bug in the caller: the core checks LBA ranges first. */
  RANGE: 'ERANGE',
  /** The store is closed. */
  CLOSED: 'ECLOSED',
  /** Writes are refused here for good: another agent holds the volume's writer lease. */
  WRITE_PROTECTED: 'EROFS',
} as const;
export type BackstoreErrorCode = (typeof BackstoreErrorCode)[keyof typeof BackstoreErrorCode];

export class BackstoreError extends Error {
  constructor(readonly code: BackstoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackstoreError';
  }
}

/** The guard every object-volume command starts with: open, and a range inside the volume. */
export function checkObjectRange(closed: boolean, offset: number, length: number, size: number): void {
  if (closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new BackstoreError(BackstoreErrorCode.RANGE, `range ${offset}+${length} outside 0..${size}`);
  }
}

export interface AllocationRange {
  offset: number;
  length: number;
  mapped: boolean;
}

export type BackstorePlugin = 'fileio' | 'block' | 'rd_mcp' | 'object';

export interface Backstore {
  readonly plugin: BackstorePlugin;
  /** Capacity in bytes (a multiple of the logical block size chosen by the LU). */
  readonly size: number;
  /** true: writes may sit in a volatile cache until flush(); false: every write is durable when it resolves. */
  readonly writeBack: boolean;
  /** true when unmap() really frees space (and reads of unmapped ranges return zeros). */
  readonly thinProvisioned: boolean;

  /** Reads exactly `length` bytes at `offset`. The returned buffer is the caller's to keep. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Writes the concatenation of `chunks` at `offset` (positional writev; chunks are views, not copies). */
  write(offset: number, chunks: readonly Buffer[]): Promise<void>;
  /** Makes every write that has resolved so far durable (SYNCHRONIZE CACHE, FUA). */
  flush(): Promise<void>;
  /** Deallocates a range; later reads of it return zeros. */
  unmap(offset: number, length: number): Promise<void>;
  /** Flushes and releases resources. Further calls fail with CLOSED. */
  close(): Promise<void>;
  /**
   * Provisioning map of [offset, offset+length) (GET LBA STATUS): ranges in ascending order that cover it
   * exactly; mapped=false where the store holds nothing and reads return zeros. Optional: without it every
   * range is reported mapped.
   */
  allocation?(offset: number, length: number): Promise<AllocationRange[]>;
  /**
   * Calls `fn` when the store's write protection changed while open (an object volume's reader promoted to
   * writer); the LU then raises the unit attention SPC-4 asks for. Optional: most stores never change.
   */
  onAccessChange?(fn: () => void): void;
  /** Figures for `info`/status (cache stats for object LUNs). */
  stats?(): Record<string, number | string | null>;
  /** Object volumes: upload everything dirty and write a root, as a job of agent/jobs.ts (its id, and when it ends). */
  syncToBucket?(): { job: number; done: Promise<void> };
  /**
   * Checks the storage object's live settings (object LUNs: bandwidth schedules, replica) and returns what
   * applies them; throws, changing nothing, when they are refused.
   */
  reconfigure?(so: Record<string, unknown>): Promise<() => void>;
  /** After close(), when the storage object was deleted: drops local state kept only for it (an import's progress and secret). */
  forget?(): Promise<void>;
}
