// Block cache support: a FIFO async lock (one per cached chunk, one around manifest writes). run() holds it
// alone; runShared() holds it with other shared holders — a chunk's writes, which the writer thread applies
// in submission order, need no exclusion from each other, only from what reads or replaces the chunk file
// (an upload's capture, a fill from the bucket, an unmap). A waiting exclusive holder stops new shared ones.
export class Mutex {
  private shared = 0;
  private exclusive = false;
  private readonly waiters: Array<{ exclusive: boolean; go: () => void }> = [];

  /** Held, or waited for. */
  get locked(): boolean {
    return this.exclusive || this.shared > 0 || this.waiters.length > 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.locked) await this.queue(true);
    else this.exclusive = true;
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  async runShared<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.tryShared()) await this.queue(false);
    try {
      return await fn();
    } finally {
      this.releaseShared();
    }
  }

  /** Takes a shared hold now if nothing exclusive holds or waits (false: not taken). */
  tryShared(): boolean {
    if (this.exclusive || this.waiters.length > 0) return false;
    this.shared++;
    return true;
  }

  releaseShared(): void {
    this.shared--;
    this.wake();
  }

  /** Resolves once wake() has made the caller a holder. */
  private queue(exclusive: boolean): Promise<void> {
    return new Promise<void>((go) => this.waiters.push({ exclusive, go }));
  }

  /** Hands the lock to the waiters at the head of the queue (counted as holders before they resume). */
  private wake(): void {
    while (!this.exclusive && this.waiters.length > 0) {
      const w = this.waiters[0]!;
      if (w.exclusive && this.shared > 0) return;
      this.waiters.shift();
      if (w.exclusive) this.exclusive = true;
      else this.shared++;
      w.go();
    }
  }
}
