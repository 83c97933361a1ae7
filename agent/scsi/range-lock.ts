// SBC-4 §5.2 (COMPARE AND WRITE atomicity): per-LU LBA range lock; writes share, compare-and-write excludes.

export interface HeldRange {
  readonly start: number;
  readonly end: number; // exclusive
  readonly exclusive: boolean;
  waiters?: (() => void)[];
}

export class RangeLock {
  private readonly held: HeldRange[] = [];

  private conflict(start: number, end: number, exclusive: boolean): HeldRange | undefined {
    for (const r of this.held) {
      if (r.start < end && start < r.end && (exclusive || r.exclusive)) return r;
    }
    return undefined;
  }

  /** Acquires [start, end). Returns synchronously-resolved fast path when nothing conflicts. */
  acquire(start: number, end: number, exclusive: boolean): HeldRange | Promise<HeldRange> {
    if (!this.conflict(start, end, exclusive)) return this.take(start, end, exclusive);
    return this.acquireSlow(start, end, exclusive);
  }

  private async acquireSlow(start: number, end: number, exclusive: boolean): Promise<HeldRange> {
    for (;;) {
      const c = this.conflict(start, end, exclusive);
      if (!c) return this.take(start, end, exclusive);
      await new Promise<void>((resolve) => (c.waiters ??= []).push(resolve));
    }
  }

  private take(start: number, end: number, exclusive: boolean): HeldRange {
    const r: HeldRange = { start, end, exclusive };
    this.held.push(r);
    return r;
  }

  release(r: HeldRange): void {
    const i = this.held.indexOf(r);
    if (i >= 0) this.held.splice(i, 1);
    if (r.waiters) for (const w of r.waiters) w();
  }
}
