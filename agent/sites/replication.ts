// docs/replication.md, docs/bucket-format.md §Replication: continuous, incremental replication of an object
// volume to a second bucket — after each manifest generation the new data objects, then the new pages, then the
// root reach the replica, so the replica always holds a complete image. Bodies come from what the primary just
// uploaded (a bounded tee), from the primary bucket only when the tee overflowed or after a restart.
import type { Logger } from '../lib/log.js';
import type { Bucket } from '../backstores/object/bucket.js';
import { crc32c } from '../lib/crc32c.js';
import { mapLimit } from '../backstores/object/manifest.js';
import { referencedKeys } from '../backstores/object/roots.js';
import { decodePageV2, decodeRootV2, isForeignId, keys, parseJson, rootKeyOrder } from '../backstores/object/format.js';
import { decodeLease, leaseFree, leaseKeys } from '../backstores/object/lease.js';
import { jobs, type Job } from '../jobs.js';
import { s3Problem } from './replica-target.js';
import { TokenBucket, type BandwidthSchedule } from './bandwidth.js';

/** Bodies held for replication at most (the rest is fetched from the primary when its turn comes). */
export const TEE_BYTES = 64 * 1024 * 1024;
/** Replica roots kept (a restoring reader keeps a consistent image while replication goes on). */
const REPLICA_RETAIN = 3;
/** Replica garbage collection runs at most this often. */
const GC_INTERVAL_MS = 30_000;
const COPY_CONCURRENCY = 4;
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 5000;

export interface ReplicatorOptions {
  /** The LUN as the shell names it (the job's subject). */
  subject: string;
  /** A bucket handle of the primary's own, for the GETs of bodies the tee no longer holds. */
  primary: Bucket;
  primaryPrefix: string;
  replica: Bucket;
  replicaPrefix: string;
  chunkSize: number;
  timeoutMs: number;
  log: Logger;
  /** The primary's own recovery point (ms): what the replica lags by once it holds the newest root. */
  primaryRpoMs: () => number;
  teeBytes?: number;
  bandwidth?: BandwidthSchedule;
  /** Checks run (and retried) before the first copy when the replica was not checked up front (agent start). */
  setup?: () => Promise<void>;
}

interface RootRef { suffix: string; body: Buffer; seq: number; teed: number }

class Stale extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export interface ReplicaStatus {
  replica_state: string;
  replica_recovery_point_s: number;
  replica_bytes_behind: number;
  replica_generation: number | null;
  replica_last_error: string | null;
  replica_tee_overflows: number;
  replica_objects_copied: number;
  replica_objects_fetched: number;
  replica_bytes_sent: number;
}

export class Replicator {
  /** Replica keys (relative to the prefix) known to exist there: "lacks" is a lookup here. */
  private readonly has = new Set<string>();
  private readonly tee = new Map<string, { body: Buffer; seq: number }>();
  private teeHeld = 0;
  private rootsTeed = 0;
  private teedBytes = 0;
  private pending: RootRef | null = null;
  private replicated: { suffix: string; epoch: number; generation: number; createdMs: number; teed: number } | null = null;
  private readonly startedAt = Date.now();
  private wake: (() => void) | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;
  private lastGc = 0;
  private cycleLeft = 0;
  private job: Job | null = null;
  /** Data objects being sent ahead of their root (eager copy), by key. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Data objects sent ahead of their root → the roots tee'd when sent: GC spares them until their root is in. */
  private readonly early = new Map<string, number>();
  private replicatedSeq = 0;
  private eagerWake: (() => void) | null = null;
  private eagerRunning: Promise<void> | null = null;
  state = 'starting';
  lastError: string | null = null;
  overflows = 0;
  copied = 0;
  fetched = 0;
  readonly limiter: TokenBucket;

  constructor(private readonly o: ReplicatorOptions) {
    this.limiter = new TokenBucket(o.bandwidth);
    o.replica.throttle = (n) => this.limiter.take(n);
  }

  private rel(key: string): string | null {
    return key.startsWith(this.o.primaryPrefix) ? key.slice(this.o.primaryPrefix.length) : null;
  }

  /** Bucket.onPut of the primary: keeps what replication will need, within the tee's bound; never waits. */
  observe(key: string, body: Buffer): void {
    if (this.stopped) return;
    const s = this.rel(key);
    if (s === null) return;
    if (s.startsWith('roots/')) {
      this.rootsTeed++;
      this.teedBytes += body.length;
      if (rootKeyOrder(s)) this.pending = { suffix: s, body, seq: this.rootsTeed, teed: this.teedBytes };
      this.kick();
      return;
    }
    if (!/^(chunks|segments|pages)\//.test(s)) return;
    this.teedBytes += body.length;
    this.tee.set(s, { body, seq: this.rootsTeed });
    this.teeHeld += body.length;
    if (!s.startsWith('pages/')) { const w = this.eagerWake; this.eagerWake = null; w?.(); }
    const cap = this.o.teeBytes ?? TEE_BYTES;
    for (const [k, v] of this.tee) {
      if (this.teeHeld <= cap) break;
      this.tee.delete(k);
      this.teeHeld -= v.body.length;
      this.overflows++;
    }
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  start(): void {
    this.running ??= this.loop().catch((e: Error) => this.o.log.error({ err: e.message }, 'replication stopped'));
    this.eagerRunning ??= this.eager();
  }

  /** Resolves once the replica holds the newest root tee'd so far, or after `ms`. */
  async settle(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.stopped && !this.caughtUp() && Date.now() < deadline) await sleep(50);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    this.eagerWake?.();
    await this.running;
    await this.eagerRunning;
    this.job?.cancel();
    this.tee.clear();
    this.teeHeld = 0;
    this.o.replica.destroy();
    this.o.primary.destroy();
  }

  status(): ReplicaStatus {
    return {
      replica_state: this.state,
      replica_recovery_point_s: Math.round(this.recoveryPointMs() / 1000),
      replica_bytes_behind: this.bytesBehind(),
      replica_generation: this.replicated?.generation ?? null,
      replica_last_error: this.lastError,
      replica_tee_overflows: this.overflows,
      replica_objects_copied: this.copied,
      replica_objects_fetched: this.fetched,
      replica_bytes_sent: this.o.replica.counters.bytes_uploaded,
    };
  }

  /** The replica holds the primary's newest root (or the primary has none yet and init has looked). */
  private caughtUp(): boolean {
    if (this.state === 'starting') return false;
    return this.pending === null || this.pending.suffix === this.replicated?.suffix;
  }

  /** Age of the newest generation complete at the replica; once it holds the newest root, the primary's own. */
  recoveryPointMs(): number {
    if (this.caughtUp()) return this.o.primaryRpoMs();
    if (!this.replicated) return Date.now() - this.startedAt;
    return Math.max(this.o.primaryRpoMs(), Date.now() - this.replicated.createdMs);
  }

  bytesBehind(): number {
    if (this.caughtUp()) return 0;
    return Math.max(this.cycleLeft, this.teedBytes - (this.replicated?.teed ?? 0));
  }

  private take(suffix: string): Buffer | null {
    const e = this.tee.get(suffix);
    if (!e) return null;
    this.tee.delete(suffix);
    this.teeHeld -= e.body.length;
    return e.body;
  }

  private async body(suffix: string): Promise<Buffer> {
    const held = this.take(suffix);
    if (held) return held;
    this.fetched++;
    const b = await this.o.primary.get(this.o.primaryPrefix + suffix, this.o.timeoutMs);
    // Collected at the primary: a newer root no longer names it; replicate that one instead.
    if (!b) throw new Stale(`${suffix} is no longer in the primary bucket`);
    return b;
  }

  /**
   * Sends tee'd data objects as soon as they are uploaded, before their root arrives, so a generation's cycle
   * is left with only its pages and root. An object superseded before any root named it is collected at the
   * replica like any garbage. Failures wait for the main loop, which reports them and retries.
   */
  private async eager(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const ready = this.state === 'starting' ? [] : [...this.tee.keys()].filter((k) => !k.startsWith('pages/') && !this.has.has(k) && !this.inflight.has(k));
      if (ready.length === 0) {
        await new Promise<void>((r) => { this.eagerWake = r; setTimeout(r, 1000).unref(); });
        continue;
      }
      let failed = false;
      await mapLimit(ready.slice(0, 16), COPY_CONCURRENCY, async (k) => {
        const e = this.tee.get(k);
        if (!e || this.stopped) return;
        const p = this.o.replica.put(this.o.replicaPrefix + k, e.body, Math.max(this.o.timeoutMs, 120_000)).then(() => {
          this.has.add(k);
          this.early.set(k, this.rootsTeed);
          this.copied++;
          if (this.tee.get(k) === e) { this.tee.delete(k); this.teeHeld -= e.body.length; }
        }, () => { failed = true; });
        this.inflight.set(k, p);
        await p;
        this.inflight.delete(k);
      });
      if (failed) await sleep(Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(failures++, 10)));
      else failures = 0;
    }
  }

  private async loop(): Promise<void> {
    for (let attempt = 0; !this.stopped;) {
      try {
        if (this.state === 'starting') await this.init();
        const t = this.pending;
        if (!t || (this.replicated && t.suffix === this.replicated.suffix)) {
          this.state = 'current';
          if (this.job) { this.job.finish(); this.job = null; }
          await new Promise<void>((r) => { this.wake = r; setTimeout(r, 5000).unref(); });
          continue;
        }
        if (this.state !== 'starting') this.state = 'syncing';
        await this.replicateRoot(t);
        attempt = 0;
        this.lastError = null;
        await this.maybeGc();
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof Stale) {
          // A newer root names what is there now; without one, look again at the primary's newest.
          if (this.pending && this.pending.suffix !== (e as Stale & { root?: string }).root) continue;
          this.pending = null;
          this.state = 'starting';
        }
        this.lastError = s3Problem(e);
        if (this.state !== 'starting') this.state = 'behind';
        if (!this.job) this.job = jobs.start('replication', this.o.subject, { unit: 'bytes', phase: 'waiting for the replica' });
        this.job.setPhase(`retrying: ${this.lastError}`);
        if (attempt === 0 || attempt % 10 === 0) this.o.log.warn({ err: this.lastError, attempt }, 'replication: replica not updated; retrying');
        await sleep(Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempt++, 10)) * (0.5 + Math.random() / 2));
      }
    }
  }

  /** What the replica holds (a key listing), its newest root, and — without a tee'd one — the primary's. */
  private async init(): Promise<void> {
    const { replica, replicaPrefix: rp, primary, primaryPrefix: pp, timeoutMs } = this.o;
    await this.o.setup?.();
    for (const dir of ['chunks/', 'segments/', 'pages/']) for (const k of await replica.list(rp + dir, Infinity, timeoutMs)) this.has.add(k.slice(rp.length));
    const newest = (await replica.list(keys.roots(rp), 1, timeoutMs))[0];
    if (newest && rootKeyOrder(newest)) {
      const buf = await replica.get(newest, timeoutMs);
      if (buf) {
        const r = decodeRootV2(parseJson(buf, newest));
        this.replicated = { suffix: newest.slice(rp.length), epoch: r.epoch, generation: r.generation, createdMs: Date.parse(r.created), teed: 0 };
      }
    }
    if (!this.pending) {
      const seq = this.rootsTeed;
      const top = (await primary.list(keys.roots(pp), 1, timeoutMs))[0];
      const body = top && rootKeyOrder(top) ? await primary.get(top, timeoutMs) : null;
      // A tee'd root may have arrived meanwhile: it is newer.
      if (body && !this.pending) this.pending = { suffix: top!.slice(pp.length), body, seq, teed: this.teedBytes };
    }
    this.state = 'syncing';
  }

  /**
   * Refuses to go on once an agent holds the writer lease at the replica (a failover opened it there): its
   * roots are newer than ours and its GC owns the prefix now. Replication stays stopped, with the reason shown.
   */
  private async checkNoWriter(): Promise<void> {
    const buf = await this.o.replica.get(leaseKeys.lease(this.o.replicaPrefix), this.o.timeoutMs);
    if (!buf) return;
    let rec;
    try {
      rec = decodeLease(buf);
    } catch {
      return;
    }
    if (!leaseFree(rec, Date.now(), 0)) {
      throw new Error(`the replica is now served by ${rec.holder} (writer lease, epoch ${rec.epoch}): replication stopped; `
        + 'after a failover, replicate back from that site (docs/replication.md §Failback) or replica delete here');
    }
  }

  private async replicateRoot(t: RootRef): Promise<void> {
    const { replica, replicaPrefix: rp, chunkSize, timeoutMs } = this.o;
    const root = decodeRootV2(parseJson(t.body, t.suffix));
    const r = this.replicated;
    if (r && (root.epoch < r.epoch || (root.epoch === r.epoch && root.generation <= r.generation))) {
      if (this.pending === t) this.pending = null;
      return;
    }
    await this.checkNoWriter();
    try {
      const pages: Array<[string, Buffer]> = [];
      const need = new Set<string>();
      for (const [p, [id, crc]] of Object.entries(root.pages)) {
        const suffix = `pages/${id}`;
        if (this.has.has(suffix)) continue;
        const body = await this.body(suffix);
        if (crc32c(body) !== crc) throw new Error(`${suffix}: checksum mismatch at the primary`);
        for (const c of decodePageV2(parseJson(body, suffix), Number(p), chunkSize).values()) {
          // A clone's pages name its origin's objects (`<prefix>#<id>`), which the replica bucket does not hold.
          if ((c.base && isForeignId(c.base.id)) || c.ext.some((x) => x.obj !== null && isForeignId(x.obj))) {
            throw new Error('this volume is a clone whose pages name objects of its origin volume; replication copies one volume\'s own objects: replicate a full copy of it instead');
          }
          if (c.base && !this.has.has(`chunks/${c.base.id}`)) need.add(`chunks/${c.base.id}`);
          for (const x of c.ext) if (x.obj !== null && !this.has.has(`segments/${x.obj}`)) need.add(`segments/${x.obj}`);
        }
        pages.push([suffix, body]);
      }
      let known = 0;
      for (const k of need) known += this.tee.get(k)?.body.length ?? 0;
      this.cycleLeft = known;
      if (this.job) this.job.setTotal(this.job.snapshot().done + known);
      else if (known > 16 * chunkSize) this.job = jobs.start('replication', this.o.subject, { unit: 'bytes', total: known, phase: 'catching up' });
      this.job?.setPhase(`copying generation ${root.generation}`);
      // Data objects, then pages, then the root: every root at the replica names only what is there.
      await mapLimit([...need], COPY_CONCURRENCY, async (k) => {
        const sending = this.inflight.get(k);
        if (sending) { await sending; if (this.has.has(k)) return; }
        const body = await this.body(k);
        await replica.put(rp + k, body, Math.max(timeoutMs, 120_000));
        this.has.add(k);
        this.copied++;
        this.cycleLeft = Math.max(0, this.cycleLeft - body.length);
        this.job?.advance(body.length);
      });
      const epochKey = leaseKeys.epoch('', root.epoch);
      if (root.epoch > 0 && !this.has.has(epochKey)) {
        // The epoch record keeps a failback writer from reusing an epoch this root carries (docs/writer-lease.md).
        const rec = await this.o.primary.get(this.o.primaryPrefix + epochKey, timeoutMs);
        if (rec && !(await replica.get(rp + epochKey, timeoutMs))) await replica.put(rp + epochKey, rec, timeoutMs, 'application/json');
        this.has.add(epochKey);
      }
      await mapLimit(pages, COPY_CONCURRENCY, async ([k, body]) => {
        await replica.put(rp + k, body, timeoutMs, 'application/json');
        this.has.add(k);
        this.copied++;
      });
      await this.checkNoWriter();
      await replica.put(rp + t.suffix, t.body, timeoutMs, 'application/json');
    } catch (e) {
      if (e instanceof Stale) Object.assign(e, { root: t.suffix });
      throw e;
    }
    this.copied++;
    this.cycleLeft = 0;
    this.replicated = { suffix: t.suffix, epoch: root.epoch, generation: root.generation, createdMs: Date.parse(root.created), teed: t.teed };
    if (this.pending === t) this.pending = null;
    this.replicatedSeq = t.seq;
    // What was uploaded two roots before this one is in this root or garbage (docs/replication.md §The tee).
    for (const [k, v] of this.tee) if (v.seq <= t.seq - 2) { this.tee.delete(k); this.teeHeld -= v.body.length; }
  }

  /** Deletes, at the replica, roots past the retained window and objects none of the retained roots names. */
  private async maybeGc(): Promise<void> {
    if (Date.now() - this.lastGc < GC_INTERVAL_MS) return;
    this.lastGc = Date.now();
    const { replica, replicaPrefix: rp, chunkSize, timeoutMs } = this.o;
    const ref = await referencedKeys(replica, rp, chunkSize, REPLICA_RETAIN, timeoutMs);
    // Objects sent ahead may belong to a root still to come (up to two roots after they were uploaded).
    for (const [k, seq] of this.early) if (seq <= this.replicatedSeq - 2) this.early.delete(k);
    const garbage = [...this.has].filter((k) => /^(chunks|segments|pages)\//.test(k) && !ref.live.has(rp + k) && !this.early.has(k) && !this.inflight.has(k));
    const doomed = [...garbage.map((k) => rp + k), ...ref.oldRoots];
    if (doomed.length === 0) return;
    await replica.delete(doomed, timeoutMs);
    for (const k of garbage) this.has.delete(k);
    this.o.log.debug({ deleted: doomed.length }, 'replication: collected replica garbage');
  }
}
