// The one gate for the commands of an object backstore: run() counts a command in (a write counted as one too);
// exclusive() holds every command back while a promotion swaps the volume parts; freezeWrites() holds only
// writes back while a snapshot takes its flush point (reads go on). One counter pair, one await per command.
export class IoBarrier {
  private inflight = 0;
  private writes = 0;
  /** Set while an exclusive section (all commands) runs. */
  private paused: Promise<void> | null = null;
  /** Set while a writes-only section runs. */
  private writesPaused: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private writesDrained: (() => void) | null = null;

  /**
   * Runs a command once no exclusive section (for a write: no writes-only section either) is in progress;
   * `check` runs just before it is counted in.
   */
  run<T>(fn: () => Promise<T>, check?: () => void, write = false): Promise<T> {
    // The common case takes no extra await: only a held-back command waits for the gate.
    if (this.paused || (write && this.writesPaused)) return this.waitThenRun(fn, check, write);
    return this.counted(fn, check, write);
  }

  private async waitThenRun<T>(fn: () => Promise<T>, check: (() => void) | undefined, write: boolean): Promise<T> {
    while (this.paused || (write && this.writesPaused)) await (this.paused ?? this.writesPaused);
    return this.counted(fn, check, write);
  }

  private async counted<T>(fn: () => Promise<T>, check: (() => void) | undefined, write: boolean): Promise<T> {
    check?.();
    this.inflight++;
    if (write) this.writes++;
    try {
      return await fn();
    } finally {
      this.out(write);
    }
  }

  /**
   * Counts in a command a fast path has just started, in the same turn as it checked `open` (and for a write
   * `frozen`), until `p` settles.
   */
  track(p: Promise<void>, write: boolean): Promise<void> {
    this.inflight++;
    if (write) this.writes++;
    return p.finally(() => this.out(write));
  }

  private out(write: boolean): void {
    if (write && --this.writes === 0) this.writesDrained?.();
    if (--this.inflight === 0) this.drained?.();
  }

  /** Runs `fn` with no command in flight and none starting until it ends. */
  async exclusive(fn: () => Promise<void>): Promise<void> {
    while (this.paused) await this.paused;
    let resume!: () => void;
    this.paused = new Promise((r) => (resume = r));
    try {
      if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = null;
      await fn();
    } finally {
      this.paused = null;
      resume();
    }
  }

  /** Whether a command may start now without waiting (no exclusive section). */
  get open(): boolean {
    return this.paused === null;
  }

  /** Whether writes are held back now (a snapshot's flush point). */
  get frozen(): boolean {
    return this.writesPaused !== null;
  }

  /** Stops new writes and waits for those under way; returns the function that lets writes resume. */
  async freezeWrites(): Promise<() => void> {
    while (this.writesPaused) await this.writesPaused;
    let open!: () => void;
    this.writesPaused = new Promise<void>((r) => { open = r; });
    if (this.writes > 0) await new Promise<void>((r) => { this.writesDrained = r; });
    this.writesDrained = null;
    return () => { this.writesPaused = null; open(); };
  }

  /** Resolves once no exclusive section is in progress. */
  async idle(): Promise<void> {
    while (this.paused) await this.paused;
  }
}
