// docs/writer-lease.md §Bucket unreachable at start: an object LUN is exported even when its bucket cannot be
// reached. Until the volume opens, reads are served from the chunk copies the cache journal names and the
// rest answer a retryable NOT READY; the open is retried with backoff and swapped in when it succeeds.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/log.js';
import { SECTOR, SectorBitmap } from '../../cache/bitmap.js';
import { readJournal } from '../../cache/journal.js';
import { BackstoreError, BackstoreErrorCode, type AllocationRange, type Backstore } from '../backstore.js';

interface LocalCopy { path: string; valid: SectorBitmap | null }

/** The chunk files the journal names: dirty ones (with their valid sectors) and whole clean copies. */
export async function localCopies(cacheDir: string): Promise<{ chunkSize: number; copies: Map<number, LocalCopy> }> {
  const j = await readJournal(cacheDir).catch(() => null);
  const copies = new Map<number, LocalCopy>();
  if (!j) return { chunkSize: 0, copies };
  const dir = join(cacheDir, 'chunks');
  for (const c of j.clean ?? []) copies.set(c.i, { path: join(dir, c.f), valid: null });
  for (const d of j.dirty) {
    const f = (d as { f?: string }).f;
    if (f) copies.set(d.i, { path: join(dir, f), valid: d.v === null ? null : SectorBitmap.fromBase64(j.chunk_size / SECTOR, d.v) });
  }
  return { chunkSize: j.chunk_size, copies };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class DeferredObjectBackstore implements Backstore {
  readonly plugin = 'object' as const;
  readonly thinProvisioned = true;
  private inner: Backstore | undefined;
  private closed = false;
  private failed: string | null = null;
  private attempts = 0;
  private readonly loop: Promise<void>;

  constructor(readonly size: number, readonly writeBack: boolean, private readonly local: { chunkSize: number; copies: Map<number, LocalCopy> },
    private readonly openNow: () => Promise<Backstore>, private firstError: string, private readonly retryMaxMs: number, private readonly log: Logger) {
    this.loop = this.retry();
  }

  /** The volume once it has opened (its snapshot operations live there). */
  get opened(): Backstore | undefined {
    return this.inner;
  }

  private async retry(): Promise<void> {
    for (let delay = 500; !this.closed; delay = Math.min(this.retryMaxMs, delay * 2)) {
      await sleep(delay);
      if (this.closed) return;
      this.attempts++;
      try {
        const b = await this.openNow();
        if (this.closed) { await b.close().catch(() => undefined); return; }
        this.inner = b;
        this.log.info({ attempts: this.attempts }, 'object volume: bucket reachable again; volume opened');
        return;
      } catch (e) {
        const err = e as BackstoreError;
        this.firstError = err.message;
        if (err.code !== BackstoreErrorCode.NOT_READY) {
          // Reachable but refused (orphaned journal, size mismatch…): retrying would not change the answer.
          this.failed = err.message;
          this.log.error({ err: err.message }, 'object volume: could not open once the bucket was reachable');
          return;
        }
        if (this.attempts === 1 || this.attempts % 10 === 0) this.log.warn({ attempts: this.attempts, err: err.message }, 'object volume: bucket still unreachable');
      }
    }
  }

  private unavailable(): BackstoreError {
    if (this.closed) return new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    if (this.failed) return new BackstoreError(BackstoreErrorCode.IO, this.failed);
    return new BackstoreError(BackstoreErrorCode.NOT_READY, `bucket unreachable since start (${this.firstError}); only locally cached chunks can be read`);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.inner) return this.inner.read(offset, length);
    const cs = this.local.chunkSize;
    if (this.closed || this.failed || !cs) throw this.unavailable();
    const out = Buffer.alloc(length);
    for (let pos = 0; pos < length;) {
      const index = Math.floor((offset + pos) / cs);
      const off = offset + pos - index * cs;
      const len = Math.min(cs - off, length - pos);
      const copy = this.local.copies.get(index);
      if (!copy || (copy.valid && !copy.valid.coversBytes(off, off + len))) throw this.unavailable();
      try {
        const fh = await open(copy.path, 'r');
        try { await fh.read(out, pos, len, off); } finally { await fh.close(); }
      } catch {
        throw this.unavailable(); // replaced by the volume opening meanwhile
      }
      pos += len;
    }
    return out;
  }

  async write(offset: number, chunks: readonly Buffer[]): Promise<void> {
    if (this.inner) return this.inner.write(offset, chunks);
    // No write can be acknowledged before the writer lease is checked in the bucket.
    throw this.unavailable();
  }

  async flush(): Promise<void> {
    if (this.inner) return this.inner.flush();
    if (this.closed) throw this.unavailable(); // nothing was accepted, so nothing to make durable
  }

  async unmap(offset: number, length: number): Promise<void> {
    if (this.inner) return this.inner.unmap(offset, length);
    throw this.unavailable();
  }

  async allocation(offset: number, length: number): Promise<AllocationRange[]> {
    if (this.inner?.allocation) return this.inner.allocation(offset, length);
    return [{ offset, length, mapped: true }];
  }

  stats(): Record<string, number | string | null> {
    if (this.inner?.stats) return this.inner.stats();
    return { size: this.size, lease_role: this.failed ? 'failed' : 'waiting for bucket', open_attempts: this.attempts, last_error: this.failed ?? this.firstError };
  }

  async close(): Promise<void> {
    if (this.closed) throw new BackstoreError(BackstoreErrorCode.CLOSED, 'object backstore is closed');
    this.closed = true;
    await this.loop;
    await this.inner?.close();
  }
}
