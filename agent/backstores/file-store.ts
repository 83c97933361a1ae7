// Positional file I/O shared by the fileio and block backstores (pread/pwritev/fdatasync over a FileHandle).
import { constants as fsc, promises as fsp, read as fsRead, writev as fsWritev } from 'node:fs';
import { execFile } from 'node:child_process';
import { delimiter, join } from 'node:path';
import type { Logger } from '../lib/log.js';
import { allocData } from '../lib/slab.js';
import { fastIo, type FastIo } from '../native/fast-io.js';
import { WriteBatcher } from './write-batcher.js';
import { BackstoreError, BackstoreErrorCode, type Backstore, type BackstorePlugin } from './backstore.js';

const ZERO_CHUNK = Buffer.alloc(1 << 20);
/**
 * Ranges below this are zero-filled instead of punched: each punch spawns fallocate(1) (Node has no
 * fallocate binding), which costs tens of milliseconds — far more than writing a few zero blocks.
 * Large discards (mkfs, fstrim) still free space.
 */
const PUNCH_MIN_BYTES = 1 << 20;
/**
 * Largest read tried on the event loop with RWF_NOWAIT: a cached copy of this size costs well under
 * the threadpool round trip; larger ones keep the parallelism of the pool (the copy then runs on
 * another core while the event loop writes the socket). OUTPOST_FAST_IO_MAX (bytes) overrides it.
 */
const NOWAIT_MAX = nonNegativeInt(process.env.OUTPOST_FAST_IO_MAX) ?? 1 << 20;

function nonNegativeInt(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Finds an executable on PATH (used once at open time, never on the data path). */
export async function findExecutable(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin:/usr/sbin:/sbin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      await fsp.access(p, fsc.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * pread/pwritev through the callback API on the raw descriptor: FileHandle's promise API costs a
 * promise, a FileHandle ref/unref and a heavier request object per call, which at QD32 4 KiB is a
 * large share of the main thread. close() waits for these to finish before the descriptor is closed.
 */
function preadOnce(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fsRead(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function pwritevOnce(fd: number, bufs: Buffer[], pos: number): Promise<number> {
  return new Promise((resolve, reject) => fsWritev(fd, bufs, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Maps a Node fs error to the backstore's error vocabulary. */
export function toBackstoreError(err: unknown, what: string): BackstoreError {
  if (err instanceof BackstoreError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new BackstoreError(BackstoreErrorCode.NO_SPACE, `${what}: no space left`, { cause: err });
  if (code === 'EBADF' || code === 'ERR_INVALID_STATE') return new BackstoreError(BackstoreErrorCode.CLOSED, `${what}: closed`, { cause: err });
  return new BackstoreError(BackstoreErrorCode.IO, `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export interface FileStoreOptions {
  readonly plugin: BackstorePlugin;
  readonly name: string;
  readonly path: string;
  readonly handle: fsp.FileHandle;
  readonly size: number;
  readonly writeBack: boolean;
  /** Path of util-linux fallocate(1) when holes can be punched (no native addon needed). */
  readonly fallocate?: string;
  readonly readOnly?: boolean;
  readonly log?: Logger;
  /** preadv2(RWF_NOWAIT) binding; default the shared addon when it loads, null for the threadpool only. */
  readonly fastIo?: FastIo | null;
}

/**
 * A Backstore over an open file descriptor. Durability without write-back comes from the O_DSYNC
 * open flag chosen by the opener; flush() is fdatasync.
 */
export class FileStore implements Backstore {
  readonly plugin: BackstorePlugin;
  readonly size: number;
  readonly writeBack: boolean;
  readonly thinProvisioned: boolean;
  readonly readOnly: boolean;
  readonly path: string;
  private readonly name: string;
  private handle: fsp.FileHandle | undefined;
  private readonly fallocate: string | undefined;
  private readonly log: Logger | undefined;
  private warnedZeroFill = false;
  /** Reads/writes issued on the raw descriptor and not yet finished; close() waits for them. */
  private inflight = 0;
  private idle?: () => void;
  private readonly fast: FastIo | undefined;
  /** Reads served whole from the page cache on the event loop / handed (in part) to the threadpool. */
  private cachedReads = 0;
  private threadpoolReads = 0;
  /** Write-back writes go out in pwritev batches, one threadpool job each (undefined: one job per write). */
  private readonly batcher: WriteBatcher | undefined;
  constructor(o: FileStoreOptions) {
    this.plugin = o.plugin;
    this.name = o.name;
    this.path = o.path;
    this.handle = o.handle;
    this.size = o.size;
    this.writeBack = o.writeBack;
    this.fallocate = o.fallocate;
    this.thinProvisioned = o.fallocate !== undefined;
    this.readOnly = o.readOnly ?? false;
    this.log = o.log;
    this.fast = o.fastIo === null ? undefined : (o.fastIo ?? fastIo(o.log));
    const what = `${this.plugin} ${this.name}: write`;
    // OUTPOST_WRITE_BATCH=0 keeps one threadpool job per write (to measure the difference).
    this.batcher = this.fast && this.writeBack && process.env.OUTPOST_WRITE_BATCH !== '0' ? new WriteBatcher(this.fast, (err) => toBackstoreError(err, what), () => this.done()) : undefined;
  }

  private fh(): fsp.FileHandle {
    if (!this.handle) throw new BackstoreError(BackstoreErrorCode.CLOSED, `${this.plugin} ${this.name}: closed`);
    return this.handle;
  }

  private checkRange(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new BackstoreError(BackstoreErrorCode.RANGE, `${this.plugin} ${this.name}: range ${offset}+${length} outside ${this.size}`);
    }
  }

  private done(): void {
    if (--this.inflight === 0 && this.idle) this.idle();
  }

  /**
   * Not an async function: a page-cache hit costs one settled promise and no coroutine frame (the
   * 4 KiB read path allocates per command); range and closed errors still arrive as rejections.
   */
  read(offset: number, length: number): Promise<Buffer> {
    let fd: number;
    try {
      this.checkRange(offset, length);
      fd = this.fh().fd;
    } catch (err) {
      return Promise.reject(err);
    }
    const buf = allocData(length);
    let done = 0;
    const fast = this.fast;
    if (fast && length <= NOWAIT_MAX && length > 0) {
      // Page-cache hit: no threadpool hand-off and no thread wake-up. Any shortfall (miss, partly cached
      // range, EOF, error) goes to the threadpool below, which also reports real errors.
      const n = fast.readNowait(fd, buf, offset);
      if (n === length) {
        this.cachedReads++;
        return Promise.resolve(buf);
      }
      if (n > 0) done = n;
    }
    this.threadpoolReads++;
    return this.readRest(fd, buf, offset, done);
  }

  /** The threadpool part of read(): pread until `buf` is full (zeros past the end of a short file). */
  private async readRest(fd: number, buf: Buffer, offset: number, done: number): Promise<Buffer> {
    const length = buf.length;
    this.inflight++;
    try {
      while (done < length) {
        const bytesRead = await preadOnce(fd, buf, done, length - done, offset + done);
        if (bytesRead === 0) {
          buf.fill(0, done); // past EOF of a file shorter than the LU: reads as zeros
          break;
        }
        done += bytesRead;
      }
    } catch (err) {
      throw toBackstoreError(err, `${this.plugin} ${this.name}: read`);
    } finally {
      this.done();
    }
    return buf;
  }

  /**
   * Write-back stores with the addon queue their writes and hand the queue to the threadpool as one
   * pwritev batch (write-batcher.ts); O_DSYNC stores keep one job per write, so their syncs overlap.
   */
  write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    let fd: number;
    try {
      this.checkRange(offset, length);
      if (this.readOnly) throw new BackstoreError(BackstoreErrorCode.IO, `${this.plugin} ${this.name}: read-only`);
      fd = this.fh().fd;
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.batcher || length === 0) return this.writeOne(fd, offset, chunks, length);
    this.inflight++;
    return this.batcher.write(fd, offset, chunks, length);
  }

  /** One pwritev on the threadpool (finishing short writes): stores without the batch path. */
  private async writeOne(fd: number, offset: number, chunks: readonly Buffer[], length: number): Promise<void> {
    this.inflight++;
    try {
      let bytesWritten = await pwritevOnce(fd, chunks as Buffer[], offset);
      // Short writes are rare (signals, quotas); finish them from the right view.
      while (bytesWritten < length) {
        const n = await pwritevOnce(fd, viewsFrom(chunks, bytesWritten), offset + bytesWritten);
        if (n === 0) throw new BackstoreError(BackstoreErrorCode.IO, `${this.plugin} ${this.name}: write made no progress`);
        bytesWritten += n;
      }
    } catch (err) {
      throw toBackstoreError(err, `${this.plugin} ${this.name}: write`);
    } finally {
      this.done();
    }
  }

  async flush(): Promise<void> {
    const fh = this.fh();
    if (this.readOnly) return;
    try {
      await fh.datasync();
    } catch (err) {
      throw toBackstoreError(err, `${this.plugin} ${this.name}: flush`);
    }
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    if (length === 0) return;
    if (this.readOnly) throw new BackstoreError(BackstoreErrorCode.IO, `${this.plugin} ${this.name}: read-only`);
    this.fh();
    if (this.fallocate && length >= PUNCH_MIN_BYTES) {
      try {
        await new Promise<void>((resolve, reject) => {
          execFile(this.fallocate!, ['--punch-hole', '--offset', String(offset), '--length', String(length), this.path], (err) => (err ? reject(err) : resolve()));
        });
        if (!this.writeBack) await this.flush();
        return;
      } catch (err) {
        this.log?.warn({ backstore: this.name, err: (err as Error).message }, 'punch-hole failed; writing zeros instead');
      }
    } else if (!this.fallocate && !this.warnedZeroFill) {
      this.warnedZeroFill = true;
      this.log?.info({ backstore: this.name }, 'fallocate(1) not available: unmap writes zeros (no space is freed)');
    }
    await this.writeZeros(offset, length);
  }

  private async writeZeros(offset: number, length: number): Promise<void> {
    for (let done = 0; done < length; ) {
      const n = Math.min(ZERO_CHUNK.length, length - done);
      await this.write(offset + done, [ZERO_CHUNK.subarray(0, n)]);
      done += n;
    }
  }

  async close(): Promise<void> {
    const fh = this.handle;
    if (!fh) return;
    this.handle = undefined;
    // The descriptor number must not be reused by another open while a pread/pwritev still holds it.
    if (this.inflight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.batcher?.close();
    try {
      if (!this.readOnly) await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  stats(): Record<string, number | string | null> {
    return {
      path: this.path,
      size: this.size,
      writeBack: String(this.writeBack),
      thin: String(this.thinProvisioned),
      fast_io: this.fast ? 'preadv2-nowait' : 'threadpool',
      cached_reads: this.cachedReads,
      threadpool_reads: this.threadpoolReads,
      ...(this.batcher?.stats() ?? { write_engine: 'threadpool, one job per write' }),
    };
  }
}

function viewsFrom(chunks: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) {
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    out.push(skip > 0 ? c.subarray(skip) : c);
    skip = 0;
  }
  return out;
}

/** Open flags: read/write (or read-only), plus O_DSYNC when every write must be durable on return. */
export function openFlags(writeBack: boolean, readOnly: boolean): number {
  if (readOnly) return fsc.O_RDONLY;
  return fsc.O_RDWR | (writeBack ? 0 : fsc.O_DSYNC);
}
