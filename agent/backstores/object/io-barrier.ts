// A gate for the commands of one backstore: run() counts a command in; exclusive() waits until the running ones
// have ended and holds new ones back while `fn` replaces what they use (an object volume's promotion).
export class IoBarrier {
  private inflight = 0;
  private paused: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  /** Runs a command once no exclusive section is in progress; `check` runs just before it is counted in. */
  async run<T>(fn: () => Promise<T>, check?: () => void): Promise<T> {
    while (this.paused) await this.paused;
    check?.();
    this.inflight++;
    try {
      return await fn();
    } finally {
      if (--this.inflight === 0) this.drained?.();
    }
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

  /** Resolves once no exclusive section is in progress. */
  async idle(): Promise<void> {
    while (this.paused) await this.paused;
  }
}
