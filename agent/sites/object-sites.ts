// docs/replication.md: what an object LUN carries above its backstore — the upload bandwidth schedule and the
// replica — configured from the storage object (saveconfig.json) at open and changed live by the shell.
import type { Logger } from '../lib/log.js';
import { Bucket } from '../backstores/object/bucket.js';
import { decodeDescriptor, keys, normalizePrefix, parseJson } from '../backstores/object/format.js';
import { describeLocation } from '../backstores/object/location.js';
import { TokenBucket, UNLIMITED, describeRate, parseSchedule, type BandwidthSchedule } from './bandwidth.js';
import { checkReplicaTarget, openReplicaBucket, s3Problem, type ReplicaSpec } from './replica-target.js';
import { Replicator, type ReplicaStatus } from './replication.js';

export interface SitesPrimary {
  name: string;
  bucket: Bucket;
  bucketName: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  chunkSize: number;
  timeoutMs: number;
  log: Logger;
  primaryRpoMs: () => number;
}

function scheduleOf(attrs: Record<string, unknown> | undefined, name: string): BandwidthSchedule {
  const v = attrs?.[name];
  if (v === undefined || v === null || v === '') return UNLIMITED;
  return parseSchedule(String(v), name);
}

/** Checks a `replica` value from saveconfig.json or the shell (shape only; the bucket is checked on apply). */
export function replicaSpecOf(v: unknown): ReplicaSpec | null {
  if (v === undefined || v === null) return null;
  const r = v as Partial<ReplicaSpec>;
  if (typeof r !== 'object' || typeof r.bucket !== 'string' || !r.bucket) throw new Error('replica: bucket is required');
  if (typeof r.prefix !== 'string' || !r.prefix) throw new Error('replica: prefix is required');
  return r as ReplicaSpec;
}

export class ObjectSites {
  readonly uploads = new TokenBucket();
  private replicator: Replicator | null = null;
  private replicaKey = 'null';
  private replicaSpec: ReplicaSpec | null = null;

  constructor(private readonly p: SitesPrimary) {
    p.bucket.throttle = (n) => this.uploads.take(n);
  }

  /**
   * Validates `so` (bandwidth schedules, the replica) and returns what makes it current. Strict: a replica
   * that cannot be reached or holds another volume is refused and nothing changes. Lenient (agent start): the
   * replica is checked by the replicator itself, which retries and reports the error.
   */
  async prepare(so: Record<string, unknown>, strict: boolean): Promise<() => void> {
    const attrs = so.attributes as Record<string, unknown> | undefined;
    const upload = scheduleOf(attrs, 'upload_bandwidth');
    const replicaRate = scheduleOf(attrs, 'replica_bandwidth');
    const spec = replicaSpecOf(so.replica);
    const key = JSON.stringify(spec);
    let next: Replicator | null | undefined;
    if (key !== this.replicaKey) next = spec ? await this.makeReplicator(spec, replicaRate, strict) : null;
    return () => {
      this.uploads.schedule = upload;
      if (next !== undefined) {
        const old = this.replicator;
        if (old) {
          this.p.bucket.onPut = null;
          void old.stop();
        }
        this.replicator = next;
        this.replicaKey = key;
        this.replicaSpec = spec;
        if (next) {
          this.p.bucket.onPut = (k, b) => next.observe(k, b);
          next.start();
        }
      }
      if (this.replicator) this.replicator.limiter.schedule = replicaRate;
    };
  }

  private async makeReplicator(spec: ReplicaSpec, rate: BandwidthSchedule, strict: boolean): Promise<Replicator> {
    const p = this.p;
    const replica = await openReplicaBucket(spec);
    const replicaPrefix = normalizePrefix(spec.prefix);
    const setup = async (): Promise<void> => {
      const own = await p.bucket.get(keys.descriptor(p.prefix), p.timeoutMs);
      if (!own) throw new Error(`the primary volume has no ${keys.descriptor(p.prefix)}`);
      const d = decodeDescriptor(parseJson(own, 'volume.json'));
      const theirs = await checkReplicaTarget(spec, { bucket: p.bucketName, prefix: p.prefix, endpoint: p.endpoint }, d, replica, p.timeoutMs);
      // The replica's descriptor is written first: a root there is never without its volume.
      if (!theirs) {
        try {
          await replica.put(keys.descriptor(replicaPrefix), own, p.timeoutMs, 'application/json');
        } catch (e) {
          throw new Error(`replica ${describeLocation(spec)}: ${s3Problem(e)}`, { cause: e });
        }
      }
    };
    try {
      if (strict) await setup();
    } catch (e) {
      replica.destroy();
      throw e;
    }
    const primary = new Bucket({ bucket: p.bucketName, endpoint: p.endpoint, region: p.region, forcePathStyle: p.forcePathStyle, connectTimeoutMs: 3000 });
    return new Replicator({
      subject: `/backstores/object/${p.name}`, primary, primaryPrefix: p.prefix, replica, replicaPrefix, chunkSize: p.chunkSize,
      timeoutMs: p.timeoutMs, log: p.log.child({ replica: describeLocation(spec) }), primaryRpoMs: p.primaryRpoMs, bandwidth: rate,
      setup: strict ? undefined : setup,
    });
  }

  replicaStatus(): ReplicaStatus | null {
    return this.replicator?.status() ?? null;
  }

  stats(): Record<string, number | string | null> {
    const now = describeRate(this.uploads.rateNow);
    const out: Record<string, number | string | null> = {
      recovery_point_s: Math.round(this.p.primaryRpoMs() / 1000),
      upload_bandwidth: this.uploads.schedule.text === 'unlimited' ? 'unlimited' : `${this.uploads.schedule.text} (now ${now})`,
    };
    const r = this.replicator;
    if (r && this.replicaSpec) {
      out.replica = describeLocation(this.replicaSpec);
      Object.assign(out, r.status());
      const rs = r.limiter.schedule;
      out.replica_bandwidth = rs.text === 'unlimited' ? 'unlimited' : `${rs.text} (now ${describeRate(r.limiter.rateNow)})`;
    }
    return out;
  }

  /** Stops replication, after waiting up to `settleMs` for the replica to take the newest root. */
  async close(settleMs = 0): Promise<void> {
    this.p.bucket.onPut = null;
    this.p.bucket.throttle = null;
    await this.replicator?.settle(settleMs);
    await this.replicator?.stop();
    this.replicator = null;
  }
}
