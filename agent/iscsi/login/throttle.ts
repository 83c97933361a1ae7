// RFC 7143 §12 (and §9.2's advice against brute force on CHAP secrets): failed-login backoff.
// Failures are counted per (initiator name, source address) and per source address. Keying the name's
// counter by address means an attacker at X never slows the same initiator name logging in from Y; the
// per-address counter stops X from spraying names. A success resets both for that pair and address.
// The login code applies it twice: a failed guess's Login Response waits out the backoff it earned, and a
// CHAP response arriving inside a window is refused unchecked with 0x0301 Service Unavailable (a target
// error class initiators retry later; an authentication failure would make them give up for good).

export interface ThrottleOptions {
  /** Backoff after the first counted failure; doubles with each further one. */
  baseMs?: number;
  /** Longest backoff. */
  maxMs?: number;
  /** Failures an address may make (over all names) before its own counter starts to back off. */
  addressAllowance?: number;
  /** Entries kept at most; the least recently failed go first. */
  maxEntries?: number;
  /** A counter with no failure for this long is forgotten. */
  forgetAfterMs?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  /** No guess is evaluated before this time. */
  until: number;
  last: number;
  /** Guesses refused inside the current window (so a flood is logged once, not per attempt). */
  refused: number;
}

export interface Verdict {
  /** Milliseconds still to wait before a guess from this pair/address is evaluated (0: go ahead). */
  waitMs: number;
  /** When refused: how many guesses this window has refused so far, this one included. */
  refused: number;
}

/** The source address of a `host:port` remote string (IPv6 hosts contain colons; the port is last). */
export function remoteAddress(remote: string): string {
  const i = remote.lastIndexOf(':');
  const host = i > 0 ? remote.slice(0, i) : remote;
  return host.replace(/^::ffff:/, '');
}

export class LoginThrottle {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly allowance: number;
  private readonly maxEntries: number;
  private readonly forgetAfterMs: number;
  private readonly now: () => number;
  /** Map order is least recently failed first (entries are re-inserted on each failure). */
  private readonly entries = new Map<string, Entry>();

  constructor(o: ThrottleOptions = {}) {
    this.baseMs = o.baseMs ?? 250;
    this.maxMs = o.maxMs ?? 30_000;
    this.allowance = o.addressAllowance ?? 4;
    this.maxEntries = o.maxEntries ?? 8192;
    this.forgetAfterMs = o.forgetAfterMs ?? 15 * 60_000;
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether a guess (a CHAP response) from `address` for `name` may be evaluated now. */
  check(name: string, address: string): Verdict {
    const t = this.now();
    const pair = this.get(pairKey(name, address), t);
    const addr = this.get(addrKey(address), t);
    const blocking = [pair, addr].filter((e): e is Entry => e !== undefined && e.until > t);
    if (blocking.length === 0) return { waitMs: 0, refused: 0 };
    let refused = 0;
    for (const e of blocking) refused = Math.max(refused, ++e.refused);
    return { waitMs: Math.max(...blocking.map((e) => e.until)) - t, refused };
  }

  /** Counts a failed guess; returns the backoff now in force for this pair (what the failure response waits). */
  fail(name: string, address: string): { backoffMs: number; failures: number } {
    const t = this.now();
    const pair = this.bump(pairKey(name, address), t, 0);
    const addr = this.bump(addrKey(address), t, this.allowance);
    this.evict(t);
    return { backoffMs: Math.max(pair.until, addr.until) - t, failures: pair.failures };
  }

  /** A successful login: the pair and its address start afresh. */
  succeed(name: string, address: string): void {
    this.entries.delete(pairKey(name, address));
    this.entries.delete(addrKey(address));
  }

  private get(key: string, t: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && t - e.last > this.forgetAfterMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private bump(key: string, t: number, allowance: number): Entry {
    const e = this.get(key, t) ?? { failures: 0, until: 0, last: t, refused: 0 };
    e.failures++;
    e.last = t;
    const over = e.failures - allowance;
    if (over > 0) {
      e.until = t + Math.min(this.maxMs, this.baseMs * 2 ** Math.min(over - 1, 30));
      e.refused = 0;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  private evict(t: number): void {
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && t - e.last <= this.forgetAfterMs) break;
      this.entries.delete(k);
    }
  }
}

// iSCSI names are case-insensitive (RFC 3722): one counter per name whatever its spelling.
const pairKey = (name: string, address: string) => `n\n${name.toLowerCase()}\n${address}`;
const addrKey = (address: string) => `a\n${address}`;
