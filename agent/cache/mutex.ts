// Block cache support: a minimal FIFO async mutex (one per cached chunk, one around manifest writes).
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  get locked(): boolean {
    return this.holders > 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.holders++;
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => { release = r; });
    try {
      await prev;
      return await fn();
    } finally {
      this.holders--;
      release();
    }
  }
}
