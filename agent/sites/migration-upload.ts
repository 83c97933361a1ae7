// Migration of a fileio/block LUN to an object LUN at another site (docs/migration.md §From a fileio or block
// LUN), the source agent's half: while A keeps serving the LUN, its bytes are copied into a new object volume
// (bucket format 2, written by the object backstore's own writer) at the destination's bucket/prefix; writes
// that land meanwhile mark their regions dirty and are copied again; at the cut-over the last dirty regions
// are copied, the volume is closed (final root, writer lease released) and B promotes its reader of it.
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { BackstoreError, BackstoreErrorCode, type Backstore } from '../backstores/backstore.js';
import { openBackstore, type BackstoreSpec } from '../backstores/index.js';
import { storageWwn } from '../config/reconcile.js';
import { storageObjectPath } from '../config/schema.js';
import { UPLOAD_VOLUME_KEYS } from '../../shared/control-commands.js';
import { jobs, type Job } from '../jobs.js';
import { exportPr } from '../scsi/pr/transfer.js';
import { findLun } from './lun-export.js';
import type { SiteHost } from './site-host.js';

/** Bytes per dirty bit: one read of the source and one write into the volume's cache per region. */
export const UPLOAD_REGION = 1024 * 1024;
const DEFAULT_CACHE = 64 * 1024 * 1024;
/** Longest one `flush` command waits for the copy before answering with what is left. */
const FLUSH_WAIT_MS = 10_000;
/** A source write in flight when the port went transitioning is waited for this long at most. */
const QUIESCE_MS = 10_000;
const RETRY_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Which regions still differ between the source and the volume (all of them at the start). */
class DirtyRegions {
  private readonly bits: Uint8Array;
  count: number;
  private cursor = 0;
  constructor(readonly regions: number) {
    this.bits = new Uint8Array(regions).fill(1);
    this.count = regions;
  }
  mark(offset: number, length: number): void {
    const last = Math.min(this.regions - 1, Math.floor((offset + Math.max(1, length) - 1) / UPLOAD_REGION));
    for (let r = Math.floor(offset / UPLOAD_REGION); r <= last; r++) if (!this.bits[r]) { this.bits[r] = 1; this.count++; }
  }
  /** Takes the next dirty region (clearing its bit before it is read, so a write after the read sets it again). */
  take(): number | undefined {
    if (this.count === 0) return undefined;
    for (let i = 0; i < this.regions; i++) {
      const r = (this.cursor + i) % this.regions;
      if (this.bits[r]) {
        this.bits[r] = 0;
        this.count--;
        this.cursor = r + 1;
        return r;
      }
    }
    return undefined;
  }
}

type Mutating = Pick<Backstore, 'write' | 'unmap'>;

/** One LUN being uploaded; at most one per TARGET/LUN on this agent. */
export class LunUpload {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private inFlight = 0;
  private wake: (() => void) | undefined;
  private restoreWrites: (() => void) | undefined;
  /** From the hand-over on, the source refuses writes (retryable NOT READY): they belong to B now. */
  private fenced = false;
  private copiedOnce = 0;
  lastError: string | null = null;
  handedOver = false;
  private readonly job: Job;

  private constructor(readonly path: string, private readonly source: Backstore, private readonly volume: Backstore,
    readonly spec: Record<string, unknown>, private readonly cacheDir: string, private readonly dirty: DirtyRegions) {
    this.job = jobs.start('migration', path, { total: source.size, unit: 'bytes', phase: 'uploading the LUN into the destination volume' });
  }

  /** Opens the new volume as its writer and starts tracking writes and copying in the background. */
  static async start(host: SiteHost, target: string, lun: number, dest: Record<string, unknown>): Promise<LunUpload> {
    const place = findLun(structuredClone(host.model()), target, lun)[0]!;
    const so = place.so;
    if (so.plugin !== 'fileio' && so.plugin !== 'block') throw new Error(`LUN ${lun} of ${target} is a ${so.plugin} LUN; only fileio and block LUNs are uploaded into an object volume`);
    const path = storageObjectPath(so);
    const lu = host.unit(path);
    if (!lu) throw new Error(`${path} is not open on this agent`);
    if (!host.stateDir) throw new Error('this agent has no state directory to keep the upload cache in');
    for (const k of Object.keys(dest)) if (!(UPLOAD_VOLUME_KEYS as readonly string[]).includes(k)) throw new Error(`volume: unknown key ${JSON.stringify(k)} (known: ${UPLOAD_VOLUME_KEYS.join(', ')})`);
    if (typeof dest.bucket !== 'string' || !dest.bucket) throw new Error('volume.bucket is required: the destination site\'s bucket');
    const size = lu.backstore.size;
    const spec: Record<string, unknown> = { ...dest, name: so.name, size, wwn: storageWwn(so), cache_size: dest.cache_size ?? DEFAULT_CACHE };
    const cacheDir = join(host.stateDir, 'migration', so.name);
    // what an earlier, aborted upload left there belongs to its volume: the source LUN is the data, so start clean
    await rm(cacheDir, { recursive: true, force: true });
    // close_timeout_ms is short: the hand-over only closes once nothing is dirty, and an aborted upload is discarded
    const volume = await openBackstore({ ...spec, plugin: 'object', cache_dir: cacheDir, close_timeout_ms: 10_000 } as unknown as BackstoreSpec, { stateDir: host.stateDir, log: host.log });
    try {
      const role = volume.stats?.().lease_role;
      if (role !== 'writer') throw new Error(`the writer lease of s3://${String(dest.bucket)}/${String(dest.prefix ?? '')} is held by ${String(volume.stats?.().lease_holder ?? 'another agent')}`);
      const used = (await volume.allocation!(0, size)).some((r) => r.mapped);
      if (used) throw new Error(`s3://${String(dest.bucket)}/${String(dest.prefix ?? '')} already holds a volume with data; migrate into an empty prefix`);
    } catch (e) {
      await volume.close().catch(() => undefined);
      throw e;
    }
    const up = new LunUpload(path, lu.backstore, volume, spec, cacheDir, new DirtyRegions(Math.ceil(size / UPLOAD_REGION)));
    up.track(lu.backstore);
    up.loop = up.copyLoop();
    return up;
  }

  /**
   * Every write or unmap the LU sends its backstore marks its regions dirty once it has completed (marking
   * after completion: a copy that cleared the bit and read before the write landed is then copied again).
   */
  private track(b: Backstore): void {
    const m = b as unknown as Mutating;
    const write = m.write.bind(b);
    const unmap = m.unmap.bind(b);
    const wrap = <A extends unknown[]>(fn: (offset: number, ...a: A) => Promise<void>, len: (...a: A) => number) => async (offset: number, ...a: A) => {
      // A write that passed the ALUA check before the port went transitioning (its data still arriving) must
      // not land here after the last copy: refused, the initiator retries it on the path that serves then.
      if (this.fenced) throw new BackstoreError(BackstoreErrorCode.NOT_READY, `${this.path} is being handed over to another site`);
      this.inFlight++;
      try {
        await fn(offset, ...a);
      } finally {
        this.inFlight--;
        this.dirty.mark(offset, len(...a));
        this.wake?.();
      }
    };
    m.write = wrap(write, (chunks: readonly Buffer[]) => chunks.reduce((n, c) => n + c.length, 0));
    m.unmap = wrap(unmap, (length: number) => length);
    this.restoreWrites = () => {
      delete (m as Partial<Mutating>).write;
      delete (m as Partial<Mutating>).unmap;
    };
  }

  private async copyRegion(r: number, firstPass: boolean): Promise<void> {
    const offset = r * UPLOAD_REGION;
    const length = Math.min(UPLOAD_REGION, this.source.size - offset);
    try {
      const data = await this.source.read(offset, length);
      // the volume is new and reads zeros: a region that was never written needs no object on the first pass
      if (!(firstPass && data.every((x) => x === 0))) await this.volume.write(offset, [data]);
      this.lastError = null;
    } catch (e) {
      this.dirty.mark(offset, length);
      this.lastError = (e as Error).message;
      throw e;
    }
  }

  private async copyLoop(): Promise<void> {
    const regions = this.dirty.regions;
    const seen = new Uint8Array(regions);
    while (!this.stopping) {
      const r = this.dirty.take();
      if (r === undefined) {
        await new Promise<void>((res) => { this.wake = res; setTimeout(res, 500); });
        this.wake = undefined;
        continue;
      }
      try {
        await this.copyRegion(r, !seen[r]);
        if (!seen[r]) {
          seen[r] = 1;
          this.copiedOnce++;
        }
      } catch {
        await sleep(RETRY_MS); // bucket down or cache full of dirty data: the region is dirty again, retried
      }
      this.job.set(Math.min(this.source.size, this.copiedOnce * UPLOAD_REGION));
    }
  }

  /** What is still to go: dirty regions of the source, plus what the volume's cache has not uploaded yet. */
  figures() {
    const st = this.volume.stats?.() ?? {};
    const n = (k: string) => (typeof st[k] === 'number' ? (st[k] as number) : 0);
    const job = this.job.snapshot();
    return {
      storage_object: this.path,
      dirty_bytes: this.dirty.count * UPLOAD_REGION + n('dirty_bytes'),
      uploads_in_flight: n('uploads_in_flight'),
      bytes_uploaded: n('bytes_uploaded'),
      put_count: n('put_count'),
      lease_role: (st.lease_role as string | undefined) ?? null,
      lease_epoch: n('lease_epoch'),
      last_error: this.lastError ?? (st.last_error as string | undefined) ?? null,
      progress: { done: job.done, total: job.total, unit: job.unit, rate: Math.round(job.rate), eta_s: job.eta_s === null ? null : Math.round(job.eta_s) },
    };
  }

  /** Waits (bounded) while the copy goes on; answers with what is left. */
  async flush(): Promise<ReturnType<LunUpload['figures']>> {
    const until = Date.now() + FLUSH_WAIT_MS;
    let f = this.figures();
    while (Date.now() < until && (f.dirty_bytes > 0 || f.uploads_in_flight > 0)) {
      await sleep(100);
      f = this.figures();
    }
    return f;
  }

  /**
   * The cut-over on A (its port is transitioning): source writes in flight are waited for, the last dirty
   * regions copied, everything uploaded and the volume closed — final root, lease released — so B can promote.
   */
  async handOver(lu: Parameters<typeof exportPr>[0]) {
    this.job.setPhase('handing over');
    this.fenced = true;
    this.stopping = true;
    await this.loop;
    const quiet = Date.now() + QUIESCE_MS;
    while (this.inFlight > 0) {
      if (Date.now() > quiet) throw new Error(`${this.inFlight} writes to ${this.path} still in flight after ${QUIESCE_MS} ms at the cut-over`);
      await sleep(10);
    }
    for (let r = this.dirty.take(); r !== undefined; r = this.dirty.take()) await this.copyRegion(r, false);
    await this.volume.syncToBucket!().done;
    const before = this.figures();
    const pr = exportPr(lu);
    await this.volume.close();
    this.handedOver = true;
    this.job.finish();
    await rm(this.cacheDir, { recursive: true, force: true }).catch(() => undefined);
    return { ...before, dirty_bytes: 0, pr, detached: false };
  }

  /** Gives the source its own write path back (a later migration of it tracks writes anew). */
  release(): void {
    this.restoreWrites?.();
    this.restoreWrites = undefined;
  }

  /** Stops the upload and closes the volume; the source LUN serves on as before (rollback). */
  async abort(reason: string): Promise<void> {
    this.stopping = true;
    this.fenced = false;
    this.wake?.();
    await this.loop;
    this.restoreWrites?.();
    this.restoreWrites = undefined;
    if (!this.handedOver) await this.volume.close().catch(() => undefined);
    await rm(this.cacheDir, { recursive: true, force: true }).catch(() => undefined);
    this.job.fail(reason);
  }
}
