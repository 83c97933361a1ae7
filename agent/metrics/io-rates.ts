// Per-LUN read/write throughput for the agent's status (the dashboard's charts), counted whether or not
// --metrics-listen is on: cumulative bytes from the counting core, rates over the last few status looks.
import type { IoOp, LunCounters } from './core-counters.js';

/** Rates are averaged over at most this window (the status is looked at every 5 s). */
const WINDOW_MS = 10_000;
/** Looks closer together than this share a sample (the shell's `status` beside the link's). */
const MIN_STEP_MS = 1000;

interface Totals { read: number; write: number }

export class IoRates implements LunCounters {
  private readonly totals = new Map<string, Totals>();
  private samples: Array<{ at: number; totals: Map<string, Totals> }> = [];

  completed(lun: string, op: IoOp, bytes: number): void {
    if (op === 'other' || bytes === 0) return;
    const t = this.totals.get(lun) ?? { read: 0, write: 0 };
    t[op] += bytes;
    this.totals.set(lun, t);
  }

  checkCondition(): void {}

  /** Bytes per second read and written on `lun` over the last window (0 when idle or unknown). */
  rates(lun: string, now = Date.now()): { read_bps: number; write_bps: number } {
    this.sample(now);
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last.at - first.at) / 1000;
    if (dt <= 0) return { read_bps: 0, write_bps: 0 };
    const a = first.totals.get(lun) ?? { read: 0, write: 0 };
    const b = last.totals.get(lun) ?? { read: 0, write: 0 };
    return { read_bps: Math.round((b.read - a.read) / dt), write_bps: Math.round((b.write - a.write) / dt) };
  }

  private sample(now: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && now - last.at < MIN_STEP_MS) return;
    this.samples.push({ at: now, totals: new Map([...this.totals].map(([k, v]) => [k, { ...v }])) });
    while (this.samples.length > 2 && now - this.samples[0]!.at > WINDOW_MS) this.samples.shift();
  }
}

/** Both counters from one decorator: the status's rates and, when on, the Prometheus metrics. */
export function bothCounters(a: LunCounters, b: LunCounters | undefined): LunCounters {
  if (!b) return a;
  return {
    completed: (lun, op, bytes, seconds) => { a.completed(lun, op, bytes, seconds); b.completed(lun, op, bytes, seconds); },
    checkCondition: (lun, key) => { a.checkCondition(lun, key); b.checkCondition(lun, key); },
  };
}
