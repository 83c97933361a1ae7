// Batched positional writes for write-back file stores and the object cache: queued pwritevs, one job per
// batch (issue 15).
//
// Why: a 4 KiB write costs little in the kernel compared with handing it to a libuv thread and back
// (a wake-up, a completion, a promise). Sending the writes queued during one event-loop turn — a socket
// read carries many commands at QD32 — as one job pays that once per batch. Each write names its own fd,
// so the object cache's chunk files share a batch (one per write, when batches took one file, cost a
// thread wake-up per 4 KiB write). One thread per store: ext4 takes the inode's rwsem exclusively for
// every buffered write, so two pool threads writing one file only spin on it (6 % of the agent's CPU in
// the 4 KiB write profile before this). With the addon's writer (a thread of the store's own), the next
// batch is queued while one runs and is taken without a thread wake-up, which cost ~10 µs of the event
// loop per batch on the threadpool (26 % of the event loop's CPU in the 4 KiB write profile with RHEL's
// TPG parameters).
import { constants as osc } from 'node:os';
import type { FastIo } from '../native/fast-io.js';
import type { BackstoreError } from './backstore.js';

/**
 * Writes per job and bytes per job (a batch always takes at least one write): enough for a QD32 burst
 * in one job, small enough that the first write of a batch does not wait long behind the others.
 */
const BATCH_WRITES = 64;
const BATCH_BYTES = 8 << 20;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osc.errno).map(([k, v]) => [v, k]));

interface QueuedWrite {
  /** performance.now() when queued: where a write's latency goes is measured, not guessed. */
  readonly queuedAt: number;
  readonly fd: number;
  readonly offset: number;
  readonly chunks: readonly Buffer[];
  readonly length: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** What one batch in flight holds: its writes, and the arrays the addon reads (bufs) and fills (results). */
interface Slot {
  writes: QueuedWrite[];
  readonly bufs: Buffer[];
  readonly results: Float64Array;
  startedAt: number;
  readonly done: (ok: boolean) => void;
}

export class WriteBatcher {
  batches = 0;
  batchedWrites = 0;
  /** Sums over settled batched writes (ms): queued → its batch handed over; batch handed over → done. */
  waitMs = 0;
  runMs = 0;
  private queue: QueuedWrite[] = [];
  private scheduled = false;
  /** Batches that may be in flight at once: 2 on a writer thread (the next waits in its queue), 1 on the pool. */
  private readonly free: Slot[];
  // Copied by the addon when a batch is handed over: shared by every slot.
  private readonly fds = new Int32Array(BATCH_WRITES);
  private readonly counts = new Uint32Array(BATCH_WRITES);
  private readonly positions = new Float64Array(BATCH_WRITES);
  private readonly writer: unknown;

  /** `toError` maps an errno-coded Error to the store's error; `settled` runs once per write after it settled. */
  constructor(
    private readonly io: FastIo,
    private readonly toError: (err: unknown) => BackstoreError,
    private readonly settled: () => void,
  ) {
    // OUTPOST_WRITE_THREAD=0: batches on libuv's threadpool (to measure the difference).
    this.writer = io.createWriter && process.env.OUTPOST_WRITE_THREAD !== '0' ? io.createWriter() : undefined;
    const slots = this.writer ? 2 : 1;
    this.free = Array.from({ length: slots }, () => {
      const slot: Slot = { writes: [], bufs: [], results: new Float64Array(BATCH_WRITES), startedAt: 0, done: (ok) => this.done(slot, ok) };
      return slot;
    });
  }

  /** Where batches run: the file's own writer thread, or libuv's threadpool. */
  get engine(): string {
    return this.writer ? 'writer-thread' : 'threadpool';
  }

  /** What `info` shows of the batches: engine, batches, writes batched, mean µs a write waited / its batch ran. */
  stats(): Record<string, string | number> {
    const n = this.batchedWrites;
    return {
      write_engine: this.engine,
      write_batches: this.batches,
      batched_writes: n,
      write_wait_us: n ? Math.round((this.waitMs * 1000) / n) : 0,
      write_run_us: n ? Math.round((this.runMs * 1000) / n) : 0,
    };
  }

  /** Resolves once all `length` bytes are written (in the page cache), rejects with a BackstoreError. */
  write(fd: number, offset: number, chunks: readonly Buffer[], length: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ queuedAt: performance.now(), fd, offset, chunks, length, resolve, reject });
      // Everything queued during this turn goes out together; while the slots are taken, new writes form the next.
      if (this.free.length > 0 && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.kick);
      }
    });
  }

  /** No more writes: the writer thread ends once the batches in flight have run (they still settle). */
  close(): void {
    if (this.writer) this.io.writerClose!(this.writer);
  }

  private readonly kick = (): void => {
    this.scheduled = false;
    while (this.free.length > 0 && this.queue.length > 0) this.run();
  };

  private run(): void {
    const slot = this.free.pop()!;
    let bytes = 0;
    let taken = 0;
    for (const w of this.queue) {
      if (taken === BATCH_WRITES || (taken > 0 && bytes + w.length > BATCH_BYTES)) break;
      this.fds[taken] = w.fd;
      this.counts[taken] = w.chunks.length;
      this.positions[taken] = w.offset;
      for (const c of w.chunks) slot.bufs.push(c);
      bytes += w.length;
      taken++;
    }
    const batch = this.queue.splice(0, taken);
    slot.startedAt = performance.now();
    try {
      if (this.writer) this.io.writerSubmit!(this.writer, this.fds, slot.bufs, this.counts, this.positions, slot.results, taken, slot.done);
      else this.io.writeBatch(this.fds, slot.bufs, this.counts, this.positions, slot.results, taken, slot.done);
    } catch (err) {
      slot.bufs.length = 0;
      this.free.push(slot);
      for (const w of batch) this.settle(w, this.toError(err));
      return;
    }
    slot.writes = batch;
    this.batches++;
    this.batchedWrites += taken;
  }

  private done(slot: Slot, ok: boolean): void {
    const batch = slot.writes;
    const now = performance.now();
    const outcomes = batch.map((w, i) => {
      this.waitMs += slot.startedAt - w.queuedAt;
      this.runMs += now - slot.startedAt;
      const n = slot.results[i]!;
      if (ok && n === w.length) return undefined;
      const code = n < 0 ? ERRNO_NAMES.get(-n) : undefined;
      const msg = !ok ? 'pwritev batch was not run' : code ? `pwritev: ${code}` : `pwritev wrote ${n} of ${w.length} bytes`;
      return this.toError(Object.assign(new Error(msg), { code }));
    });
    // The next batch is handed over before this one's commands complete, so the thread keeps writing
    // while the event loop sends their responses.
    slot.bufs.length = 0;
    slot.writes = [];
    this.free.push(slot);
    this.kick();
    batch.forEach((w, i) => this.settle(w, outcomes[i]));
  }

  private settle(w: QueuedWrite, err: BackstoreError | undefined): void {
    if (err) w.reject(err);
    else w.resolve();
    this.settled();
  }
}
