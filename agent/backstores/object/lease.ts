// docs/writer-lease.md: one writer per volume. `<prefix>lease.json` names the holder, its epoch and expiry;
// it is taken and renewed with S3 conditional writes (If-None-Match: * / If-Match: etag) where the provider
// honours them, else by write, settle, read back. A writer acknowledges only while its lease is valid.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { S3Client, GetObjectCommand, PutObjectCommand, DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Logger } from '../../lib/log.js';

export interface LeaseOptions {
  bucket: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** Normalized volume prefix ('' or ending in '/'). */
  prefix: string;
  /** This cache's stable identity (a restart after kill -9 resumes its own lease at once). */
  holder: string;
  /** Lease duration, default 60 000 ms: a writer keeps acknowledging through bucket outages shorter than this. */
  leaseMs: number;
  /** Fallback only: how long a written lease must stand before it counts as taken; also the expiry grace. */
  settleMs: number;
  timeoutMs: number;
  log: Logger;
}

export interface LeaseRecord {
  format: 'outpost-lease';
  version: 1;
  holder: string;
  token: string;
  epoch: number;
  /** Wall-clock expiry, ms since the epoch (also as ISO text for people). */
  expires_ms: number;
  expires: string;
  released: boolean;
}

export type LeaseRole = 'writer' | 'reader' | 'fenced';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}
const isPrecondition = (e: unknown): boolean => status(e) === 412 || (e as { name?: string })?.name === 'PreconditionFailed';
const isConflict = (e: unknown): boolean => status(e) === 409;

/** The few S3 calls the lease makes: its own client, so lease traffic never queues behind chunk uploads. */
class LeaseStore {
  readonly client: S3Client;
  constructor(private readonly o: LeaseOptions) {
    this.client = new S3Client({
      endpoint: o.endpoint, region: o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: o.forcePathStyle ?? Boolean(o.endpoint), requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: Math.min(3000, o.timeoutMs) },
    });
  }

  async get(key: string, timeoutMs = this.o.timeoutMs): Promise<{ body: Buffer; etag: string } | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: key }), { abortSignal: AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs))) });
      return { body: Buffer.from(await r.Body!.transformToByteArray()), etag: r.ETag ?? '' };
    } catch (e) {
      if (status(e) === 404 || (e as { name?: string }).name === 'NoSuchKey') return null;
      throw e;
    }
  }

  async put(key: string, body: string, cond: { ifMatch?: string; ifNoneMatch?: string } = {}, timeoutMs = this.o.timeoutMs): Promise<string> {
    const r = await this.client.send(new PutObjectCommand({
      Bucket: this.o.bucket, Key: key, Body: body, ContentType: 'application/json', IfMatch: cond.ifMatch, IfNoneMatch: cond.ifNoneMatch,
    }), { abortSignal: AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs))) });
    return r.ETag ?? '';
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: key }), { abortSignal: AbortSignal.timeout(this.o.timeoutMs) });
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.o.bucket, Prefix: prefix, ContinuationToken: token }),
        { abortSignal: AbortSignal.timeout(this.o.timeoutMs) });
      for (const c of r.Contents ?? []) if (c.Key) out.push(c.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
}

export const leaseKeys = {
  lease: (prefix: string) => `${prefix}lease.json`,
  epochs: (prefix: string) => `${prefix}epochs/`,
  epoch: (prefix: string, n: number) => `${prefix}epochs/${String(n).padStart(12, '0')}`,
  probe: (prefix: string, token: string) => `${prefix}lease-probe/${token}`,
} as const;

export function decodeLease(buf: Buffer): LeaseRecord {
  const r = JSON.parse(buf.toString('utf8')) as Partial<LeaseRecord>;
  if (r?.format !== 'outpost-lease' || r.version !== 1 || typeof r.holder !== 'string' || typeof r.token !== 'string'
    || !Number.isSafeInteger(r.epoch) || !Number.isFinite(r.expires_ms)) throw new Error('lease.json: not an outpost lease');
  return { released: false, ...r } as LeaseRecord;
}

/** Whether a lease record leaves the volume free to take (released, or expired past the settle grace). */
export function leaseFree(r: LeaseRecord, nowMs: number, graceMs: number): boolean {
  return r.released || nowMs > r.expires_ms + graceMs;
}

export class WriterLease {
  role: LeaseRole = 'reader';
  /** The writer's own epoch; for a reader, the epoch of the holder it found. */
  epoch = 0;
  /** Provider honours If-None-Match / If-Match on PUT. */
  conditional = false;
  /** The record this writer replaced when it took the lease (null: the volume had no lease). */
  previous: LeaseRecord | null = null;
  /** For a reader: the holder found at open. */
  heldBy: string | null = null;
  lastError: string | null = null;
  private etag = '';
  private token = randomBytes(12).toString('hex');
  /** performance.now() before which the lease is certainly ours (request start + leaseMs). */
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | null = null;
  private readonly store: LeaseStore;

  private constructor(private readonly o: LeaseOptions) {
    this.store = new LeaseStore(o);
  }

  /** Detects conditional-write support, then takes the lease if it is free (→ writer) or finds its holder (→ reader). */
  static async open(o: LeaseOptions): Promise<WriterLease> {
    const l = new WriterLease(o);
    try {
      l.conditional = await l.probe();
      await l.acquire();
    } catch (e) {
      l.store.client.destroy();
      throw e;
    }
    if (l.role === 'writer') l.schedule();
    return l;
  }

  /** A PUT that must fail (If-None-Match: * on an existing key; If-Match on a wrong etag) shows whether conditions are honoured. */
  private async probe(): Promise<boolean> {
    const key = leaseKeys.probe(this.o.prefix, randomBytes(8).toString('hex'));
    let honoured = true;
    try {
      await this.store.put(key, '{}', { ifNoneMatch: '*' });
      for (const cond of [{ ifNoneMatch: '*' }, { ifMatch: '"00000000000000000000000000000000"' }]) {
        try {
          await this.store.put(key, '{}', cond);
          honoured = false;
        } catch (e) {
          if (!isPrecondition(e)) throw e;
        }
      }
    } catch (e) {
      if (status(e) !== 501 && status(e) !== 400) throw e;
      honoured = false; // the provider rejects the headers outright
    } finally {
      await this.store.delete(key).catch(() => undefined);
    }
    if (!honoured) this.o.log.info('object volume: provider ignores conditional writes; writer lease uses write-settle-read-back (docs/writer-lease.md)');
    return honoured;
  }

  private record(epoch: number, startWall: number, released = false): LeaseRecord {
    const expires_ms = startWall + this.o.leaseMs;
    return { format: 'outpost-lease', version: 1, holder: this.o.holder, token: this.token, epoch, expires_ms, expires: new Date(expires_ms).toISOString(), released };
  }

  private async current(): Promise<{ rec: LeaseRecord; etag: string } | null> {
    for (let attempt = 0; ; attempt++) {
      const got = await this.store.get(leaseKeys.lease(this.o.prefix));
      if (!got) return null;
      try {
        return { rec: decodeLease(got.body), etag: got.etag };
      } catch (e) {
        // Some providers (s3rver) can serve an object while a PUT is still replacing it: read again.
        if (attempt >= 4) throw e;
        await sleep(100 * (attempt + 1));
      }
    }
  }

  /** Highest epoch ever claimed here: lease.json can be lost, the epoch records are only ever added. */
  private async highestEpoch(found: LeaseRecord | null): Promise<number> {
    const claimed = await this.store.list(leaseKeys.epochs(this.o.prefix));
    const last = claimed.length ? Number(claimed[claimed.length - 1]!.slice(leaseKeys.epochs(this.o.prefix).length)) : 0;
    return Math.max(found?.epoch ?? 0, Number.isSafeInteger(last) ? last : 0);
  }

  /** force: take the next epoch even from a holder whose lease has not expired (promote force=true). */
  private async acquire(force = false): Promise<void> {
    /** The last record found that an earlier attempt of ours did not write: whom this writer takes over from. */
    let prior: LeaseRecord | null = null;
    for (let attempt = 0; attempt < 20; attempt++) {
      const t0 = performance.now();
      const wall = Date.now();
      const cur = await this.current();
      const ours = cur?.rec.token === this.token;
      if (!ours) prior = cur?.rec ?? null;
      if (!force && cur && cur.rec.holder !== this.o.holder && !leaseFree(cur.rec, wall, this.o.settleMs)) {
        this.role = 'reader';
        this.epoch = cur.rec.epoch;
        this.heldBy = cur.rec.holder;
        return;
      }
      // A retry after an uncertain attempt of our own keeps that attempt's epoch: epochs only count hand-overs.
      const epoch = ours ? cur!.rec.epoch : (await this.highestEpoch(cur?.rec ?? null)) + 1;
      const rec = this.record(epoch, wall);
      const body = JSON.stringify(rec);
      const key = leaseKeys.lease(this.o.prefix);
      if (this.conditional) {
        try {
          this.etag = await this.store.put(key, body, cur ? { ifMatch: cur.etag } : { ifNoneMatch: '*' });
        } catch (e) {
          if (isPrecondition(e) || isConflict(e)) continue; // someone else moved first: look again
          throw e;
        }
        await this.store.put(leaseKeys.epoch(this.o.prefix, epoch), body, { ifNoneMatch: '*' }).catch((e: unknown) => {
          if (!isPrecondition(e)) throw e;
          throw new Error(`epoch ${epoch} was already claimed`);
        });
      } else {
        this.etag = await this.store.put(key, body);
        // A rival that read the lease before our PUT landed had its own PUT land within settle/2 of its read,
        // hence before our read-back: of two such writers at most one reads its own token back.
        const fast = performance.now() - t0 < this.o.settleMs / 2;
        await sleep(this.o.settleMs);
        const back = await this.current();
        if (!fast || back?.rec.token !== this.token) { await sleep(Math.random() * this.o.settleMs); continue; }
        const epochKey = leaseKeys.epoch(this.o.prefix, epoch);
        const seen = await this.store.get(epochKey);
        if (seen && decodeLease(seen.body).token !== this.token) continue;
        await this.store.put(epochKey, body);
      }
      this.previous = prior;
      this.epoch = epoch;
      this.role = 'writer';
      this.validUntil = t0 + this.o.leaseMs;
      this.o.log.info({ epoch, conditional: this.conditional, previous: this.previous?.holder ?? null }, 'object volume: writer lease taken');
      return;
    }
    throw new Error('could not take or read the writer lease (too much contention)');
  }

  /**
   * Promotion of a reader (docs/writer-lease.md §Promotion): takes the lease when it is free (released, expired,
   * absent) — or, with force, even from a live holder, whose next renewal then finds a foreign record and fences
   * it. Throws, leaving the lease untouched, when it is held and force is not given. Returns the replaced record.
   */
  async promote(o: { force?: boolean } = {}): Promise<{ epoch: number; previous: LeaseRecord | null; forced: boolean }> {
    if (this.role !== 'reader') throw new Error(this.role === 'writer' ? `already the writer (epoch ${this.epoch})` : `${this.lastError ?? 'writer lease lost'}; a fenced LUN is reopened (restart the agent) before it can be promoted`);
    const cur = await this.current();
    const held = cur !== null && cur.rec.holder !== this.o.holder && !leaseFree(cur.rec, Date.now(), this.o.settleMs);
    if (held && !o.force) {
      throw new Error(`the writer lease is held by ${cur.rec.holder} (epoch ${cur.rec.epoch}) until ${cur.rec.expires}; `
        + 'wait until it is released or expires, or promote with force=true to fence that writer');
    }
    await this.acquire(held);
    if ((this.role as LeaseRole) !== 'writer') throw new Error(`the writer lease was taken by ${this.heldBy ?? 'another agent'} (epoch ${this.epoch}) first`);
    this.heldBy = null;
    this.schedule();
    return { epoch: this.epoch, previous: this.previous, forced: held };
  }

  /** The lease record as it is now in the bucket (null: none). */
  async peek(): Promise<LeaseRecord | null> {
    return (await this.current())?.rec ?? null;
  }

  /**
   * Resolves with the record once its holder has released the lease (clean close, migration hand-over), polling
   * every pollMs; rejects when the signal aborts. Expiry does not count: a standby never takes over on its own.
   */
  async whenReleased(o: { pollMs?: number; signal?: AbortSignal } = {}): Promise<LeaseRecord> {
    const every = Math.max(50, o.pollMs ?? Math.floor(this.o.leaseMs / 12));
    for (;;) {
      o.signal?.throwIfAborted();
      const cur = await this.current().catch(() => null);
      if (cur?.rec.released && cur.rec.holder !== this.o.holder) return cur.rec;
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => { o.signal?.removeEventListener('abort', stop); resolve(); }, every);
        const stop = (): void => { clearTimeout(t); reject(o.signal!.reason as Error); };
        o.signal?.addEventListener('abort', stop, { once: true });
      });
    }
  }

  /**
   * How long a forced promotion waits before it serves writes: until the replaced holder has certainly renewed
   * (and been fenced) and any root or delete it began before has ended — or its lease has run out, if sooner.
   */
  fenceWaitMs(replaced: LeaseRecord): number {
    const renewal = Math.floor(this.o.leaseMs / 6) + 2 * this.o.timeoutMs + this.o.settleMs;
    return Math.max(0, Math.min(renewal, replaced.expires_ms + this.o.settleMs - Date.now()));
  }

  private schedule(): void {
    const every = Math.max(50, Math.floor(this.o.leaseMs / 6));
    this.timer = setInterval(() => { if (!this.renewing) this.renewing = this.renew().finally(() => { this.renewing = null; }); }, every);
    this.timer.unref();
  }

  /** Extends the lease. A rival's record means fenced for good; a network failure only lets the lease run down. */
  private async renew(): Promise<void> {
    if (this.role !== 'writer') return;
    const t0 = performance.now();
    const left = this.validUntil - t0;
    try {
      const rec = this.record(this.epoch, Date.now());
      const key = leaseKeys.lease(this.o.prefix);
      if (this.conditional) {
        this.etag = await this.store.put(key, JSON.stringify(rec), { ifMatch: this.etag });
      } else {
        // Without conditions a renewal must land before any rival could look (expiry + settle): bounded by what is left.
        if (left <= this.o.settleMs) { this.fence('the lease ran out before it could be renewed'); return; }
        const cur = await this.current();
        if (cur?.rec.token !== this.token) { this.fence(`lease.json now names ${cur?.rec.holder ?? 'nobody'} (epoch ${cur?.rec.epoch ?? '?'})`); return; }
        this.etag = await this.store.put(key, JSON.stringify(rec), {}, left - this.o.settleMs);
      }
      this.validUntil = t0 + this.o.leaseMs;
      this.lastError = null;
    } catch (e) {
      if (isPrecondition(e)) { this.fence('lease.json was replaced by another agent'); return; }
      this.lastError = `lease renewal: ${(e as Error).message}`;
      this.o.log.warn({ err: (e as Error).message, valid_ms: Math.max(0, Math.round(left)) }, 'object volume: writer lease renewal failed; retrying');
    }
  }

  private fence(why: string): void {
    if (this.role !== 'writer') return;
    this.role = 'fenced';
    this.lastError = `writer lease lost: ${why}`;
    this.o.log.error({ epoch: this.epoch, why }, 'object volume: writer lease lost; writes are refused from now on');
  }

  /** ms the lease is certainly still ours (0 when not the writer). */
  remainingMs(): number {
    return this.role === 'writer' ? Math.max(0, this.validUntil - performance.now()) : 0;
  }

  /** Writes may be acknowledged: the lease outlives the margin renewals need. */
  writable(): boolean {
    return this.remainingMs() > this.ackMarginMs;
  }

  get ackMarginMs(): number {
    return Math.max(this.o.settleMs, Math.floor(this.o.leaseMs / 12));
  }

  /**
   * The one GC gate: objects may be deleted (and roots written) only by the current writer, with enough lease
   * left that the request finishes before any rival could take over. A fenced or lapsed writer deletes nothing.
   */
  mayMutate(requestMs: number): boolean {
    return this.role === 'writer' && this.remainingMs() > requestMs + this.ackMarginMs;
  }

  /** Gives the lease up (close with everything uploaded): the next agent may take epoch+1 at once. */
  async release(): Promise<void> {
    this.stop();
    if (this.role !== 'writer') return;
    const rec = this.record(this.epoch, Date.now(), true);
    const key = leaseKeys.lease(this.o.prefix);
    try {
      if (this.conditional) await this.store.put(key, JSON.stringify(rec), { ifMatch: this.etag });
      else {
        const cur = await this.current();
        if (cur?.rec.token === this.token && this.remainingMs() > this.o.settleMs) await this.store.put(key, JSON.stringify(rec), {}, this.remainingMs() - this.o.settleMs);
      }
      this.role = 'reader';
      this.o.log.info({ epoch: this.epoch }, 'object volume: writer lease released');
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'object volume: writer lease not released; it expires on its own');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async destroy(): Promise<void> {
    this.stop();
    await this.renewing;
    this.store.client.destroy();
  }
}
