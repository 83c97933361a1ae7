// Positional file I/O shared by the fileio and block backstores (pread/pwritev/fdatasync over a FileHandle).
import { constants as fsc, promises as fsp } from 'node:fs';
import { execFile } from 'node:child_process';
import { delimiter, join } from 'node:path';
import type { Logger } from '../lib/log.js';
import { BackstoreError, BackstoreErrorCode, type Backstore, type BackstorePlugin } from './backstore.js';

const ZERO_CHUNK = Buffer.alloc(1 << 20);
/**
 * Ranges below this are zero-filled instead of punched: each punch spawns fallocate(1) (Node has no
 * fallocate binding), which costs tens of milliseconds — far more than writing a few zero blocks.
 * Large discards (mkfs, fstrim) still free space.
 */
const PUNCH_MIN_BYTES = 1 << 20;

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

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length);
    const fh = this.fh();
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) {
          buf.fill(0, done); // past EOF of a file shorter than the LU: reads as zeros
          break;
        }
        done += bytesRead;
      }
    } catch (err) {
      throw toBackstoreError(err, `${this.plugin} ${this.name}: read`);
    }
    return buf;
  }

  async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const c of chunks) length += c.length;
    this.checkRange(offset, length);
    if (this.readOnly) throw new BackstoreError(BackstoreErrorCode.IO, `${this.plugin} ${this.name}: read-only`);
    const fh = this.fh();
    try {
      let { bytesWritten } = await fh.writev(chunks as Buffer[], offset);
      // Short writes are rare (signals, quotas); finish them from the right view.
      while (bytesWritten < length) {
        const rest = viewsFrom(chunks, bytesWritten);
        const r = await fh.writev(rest, offset + bytesWritten);
        if (r.bytesWritten === 0) throw new BackstoreError(BackstoreErrorCode.IO, `${this.plugin} ${this.name}: write made no progress`);
        bytesWritten += r.bytesWritten;
      }
    } catch (err) {
      throw toBackstoreError(err, `${this.plugin} ${this.name}: write`);
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
    try {
      if (!this.readOnly) await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  stats(): Record<string, number | string | null> {
    return { path: this.path, size: this.size, writeBack: String(this.writeBack), thin: String(this.thinProvisioned) };
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
