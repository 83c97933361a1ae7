// docs/replication.md §Bandwidth limits: scheduled rate limits (as AWS Storage Gateway's bandwidth schedules)
// for the flusher's uploads and for replication — a schedule in the agent's local time, and a token bucket.
import { bytesToHuman, humanToBytes } from '../config/size.js';

/** The object storage object's attributes holding schedules (`set attribute upload_bandwidth="…"`). */
export const BANDWIDTH_ATTRIBUTES = ['upload_bandwidth', 'replica_bandwidth'] as const;

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

interface Rule {
  /** Bytes per second; Infinity for unlimited. */
  rate: number;
  /** Days of the week (0 = Sunday) the rule applies on. */
  days: ReadonlySet<number>;
  /** Minutes after local midnight, [from, to); from > to wraps past midnight. */
  from: number;
  to: number;
}

export interface BandwidthSchedule {
  readonly text: string;
  /** Bytes per second at `when` (Infinity: unlimited). */
  rateAt(when: Date): number;
}

const ALL_DAYS = new Set([0, 1, 2, 3, 4, 5, 6]);

function parseDays(word: string): Set<number> | null {
  const w = word.toLowerCase();
  if (w === 'daily' || w === 'everyday') return new Set(ALL_DAYS);
  if (w === 'weekdays') return new Set([1, 2, 3, 4, 5]);
  if (w === 'weekends') return new Set([0, 6]);
  const one = (d: string): number => DAYS.indexOf(d.slice(0, 3) as (typeof DAYS)[number]);
  const out = new Set<number>();
  for (const part of w.split('+')) {
    const m = /^([a-z]{3})(?:-([a-z]{3}))?$/.exec(part);
    if (!m) return null;
    const a = one(m[1]!);
    const b = m[2] === undefined ? a : one(m[2]);
    if (a < 0 || b < 0) return null;
    for (let d = a; ; d = (d + 1) % 7) { out.add(d); if (d === b) break; }
  }
  return out;
}

function parseClock(s: string, what: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(s);
  if (!m || Number(m[1]) > 24 || Number(m[2]) > 59 || (Number(m[1]) === 24 && Number(m[2]) !== 0)) throw new Error(`${what}: bad time '${s}' (use HH:MM, 00:00-24:00)`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** "20MB/s", "512KiB/s", "unlimited" → bytes per second (K, M, G are powers of 1024, as targetcli sizes). */
export function parseRate(s: string, what: string): number {
  if (/^(unlimited|none|off)$/i.test(s)) return Infinity;
  const m = /^(.+)\/s$/i.exec(s);
  if (!m) throw new Error(`${what}: bad rate '${s}' (use for example 20MB/s, 512KiB/s or unlimited)`);
  let n: number;
  try {
    n = humanToBytes(m[1]!.trim());
  } catch {
    throw new Error(`${what}: bad rate '${s}' (use for example 20MB/s, 512KiB/s or unlimited)`);
  }
  if (!(n > 0)) throw new Error(`${what}: a rate must be positive (or unlimited)`);
  return n;
}

/**
 * Parses a schedule: rules separated by commas, the first that matches the local time wins, no match means
 * unlimited. A rule is `RATE [DAYS] [HH:MM-HH:MM]`; DAYS is daily, weekdays, weekends, a day (mon) or a
 * range (mon-fri), joined by '+' (sat+sun). Example: "20MB/s weekdays 08:00-18:00, 50MB/s, unlimited".
 */
export function parseSchedule(text: string, what = 'bandwidth'): BandwidthSchedule {
  const rules: Rule[] = [];
  const src = text.trim();
  if (src === '') throw new Error(`${what}: empty schedule (use unlimited for no limit)`);
  for (const part of src.split(',')) {
    const words = part.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) throw new Error(`${what}: empty rule in '${text}'`);
    const rate = parseRate(words.shift()!, what);
    let days: ReadonlySet<number> = ALL_DAYS;
    let from = 0;
    let to = 24 * 60;
    for (const w of words) {
      const span = /^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$/.exec(w);
      if (span) {
        from = parseClock(span[1]!, what);
        to = parseClock(span[2]!, what);
        if (from === to) throw new Error(`${what}: empty time range '${w}'`);
        continue;
      }
      const d = parseDays(w);
      if (!d) throw new Error(`${what}: '${w}' is neither days (weekdays, weekends, daily, mon-fri, sat+sun) nor a time range (08:00-18:00)`);
      days = d;
    }
    rules.push({ rate, days, from, to });
  }
  return {
    text: src,
    rateAt(when: Date): number {
      const day = when.getDay();
      const min = when.getHours() * 60 + when.getMinutes();
      for (const r of rules) {
        // A range that wraps midnight belongs to the day it starts on.
        const inRange = r.from < r.to ? r.days.has(day) && min >= r.from && min < r.to
          : (r.days.has(day) && min >= r.from) || (r.days.has((day + 6) % 7) && min < r.to);
        if (inRange) return r.rate;
      }
      return Infinity;
    },
  };
}

export const UNLIMITED: BandwidthSchedule = { text: 'unlimited', rateAt: () => Infinity };

export function describeRate(rate: number): string {
  if (!Number.isFinite(rate)) return 'unlimited';
  return `${bytesToHuman(rate)}/s`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * A token bucket whose rate follows a schedule. A request pays before it is sent and waits until the bucket is
 * out of debt, so a request larger than the burst (an 8 MiB segment under a 1 MB/s limit) waits its own time
 * too: over any window the bytes sent stay within rate × window + the burst.
 */
export class TokenBucket {
  private tokens = 0;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();
  /** Bytes passed since creation. */
  passed = 0;

  constructor(public schedule: BandwidthSchedule = UNLIMITED, private readonly burstSeconds = 0.25) {}

  get rateNow(): number {
    return this.schedule.rateAt(new Date());
  }

  private refill(rate: number): void {
    const now = Date.now();
    if (Number.isFinite(rate)) this.tokens = Math.min(rate * this.burstSeconds, this.tokens + ((now - this.last) / 1000) * rate);
    this.last = now;
  }

  /** Resolves when `bytes` may be sent. Callers are served in order. */
  take(bytes: number): Promise<void> {
    const turn = this.queue.then(async () => {
      let paid = false;
      for (;;) {
        const rate = this.rateNow;
        this.refill(rate);
        // Unlimited now (or the limit was lifted while waiting): no debt is carried into a later window.
        if (!Number.isFinite(rate)) { this.tokens = 0; break; }
        if (!paid) { this.tokens -= bytes; paid = true; }
        if (this.tokens >= 0) break;
        // Re-read the schedule at least every second: a window may open (or the limit be lifted) meanwhile.
        await sleep(Math.min(1000, Math.max(5, (-this.tokens / rate) * 1000)));
      }
      this.passed += bytes;
    });
    this.queue = turn;
    return turn;
  }
}
