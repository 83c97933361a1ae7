// An interactive qemu-io fed one command at a time on stdin: the next command goes only after the
// previous one answered, so a write stream lasts exactly as long as a test wants — no fixed-size
// stream racing a timer on a loaded machine.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

const PROMPT = 'qemu-io> ';

export class QemuIoStream {
  /** Everything qemu-io wrote on stdout and stderr, in arrival order. */
  log = '';
  readonly exited: Promise<number | null>;
  private readonly p: ChildProcessWithoutNullStreams;
  private pending = '';
  private waiter: ((answer: string) => void) | undefined;
  private answers: string[] = [];

  constructor(url: string) {
    this.p = spawn('qemu-io', ['-f', 'raw', url], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((r) => this.p.once('exit', (c) => r(c)));
    this.p.stderr.on('data', (d: Buffer) => { this.log += d.toString(); });
    this.p.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      this.log += s;
      this.pending += s;
      // Each prompt closes the answer to the command before it (the first one closes the start-up).
      for (let i = this.pending.indexOf(PROMPT); i >= 0; i = this.pending.indexOf(PROMPT)) {
        this.answers.push(this.pending.slice(0, i));
        this.pending = this.pending.slice(i + PROMPT.length);
      }
      this.deliver();
    });
    this.p.once('exit', () => this.deliver());
  }

  private deliver(): void {
    if (!this.waiter) return;
    if (this.answers.length > 0) this.take(this.answers.shift()!);
    else if (this.p.exitCode !== null || this.p.signalCode !== null) this.take(`qemu-io exited (${this.p.exitCode ?? this.p.signalCode})\n${this.pending}`);
  }

  private take(answer: string): void {
    const w = this.waiter!;
    this.waiter = undefined;
    w(answer);
  }

  private next(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiter = undefined; reject(new Error(`qemu-io gave no answer within ${timeoutMs} ms:\n${this.log.slice(-2000)}`)); }, timeoutMs);
      this.waiter = (a) => { clearTimeout(timer); resolve(a); };
      this.deliver();
    });
  }

  /** Resolves once qemu-io has opened the image and shows its first prompt. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const startup = await this.next(timeoutMs);
    if (/exited|error|failed/i.test(startup)) throw new Error(`qemu-io did not start: ${this.log.slice(-2000)}`);
  }

  /** Runs one command; resolves with its stdout answer. */
  command(cmd: string, timeoutMs = 60_000): Promise<string> {
    this.p.stdin.write(`${cmd}\n`);
    return this.next(timeoutMs);
  }

  /** Ends the session the way a user would; resolves with the exit code. */
  async quit(): Promise<number | null> {
    this.p.stdin.end('quit\n');
    return this.exited;
  }

  kill(): void {
    if (this.p.exitCode === null && this.p.signalCode === null) this.p.kill('SIGKILL');
  }
}
