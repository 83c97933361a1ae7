// docs/bucket-format.md §Snapshot, clone: snapshots of a volume as retained roots (`snapshots/<name>.json`), taken
// at a flush point, listed, and deleted (refused while clones depend on them); GC keeps what they reference.
import type { Bucket } from './bucket.js';
import type { VolumeManifest } from './manifest.js';
import type { WriterLease } from './lease.js';
import type { ChunkCache } from '../../cache/chunk-cache.js';
import { Mutex } from '../../cache/mutex.js';
import { BackstoreError, BackstoreErrorCode } from '../backstore.js';
import { SNAPSHOT_NAME_RE, decodeRootV2, frameJson, keys, parseJson, snapshotNameOf, type RootV2 } from './format.js';
import { keysOf, readRoot, snapshotObjectKeys } from './roots.js';
import type { IoBarrier } from './io-barrier.js';

export interface SnapshotInfo {
  name: string;
  created: string;
  generation: number;
  epoch: number;
  size: number;
  /** Dependent clones and read-only exports recorded in the bucket. */
  clones: number;
}

/** A dependent record, `snapshots/<name>.clones/<id>`: a volume whose pages name this snapshot's objects. */
export interface DependentRecord {
  format: 'outpost-dependent';
  bucket: string;
  prefix: string;
  created: string;
}

/** The stored snapshot object: the root it retains plus its name and when it was taken. */
export interface SnapshotObject extends RootV2 { snapshot: { name: string; created: string } }

const fail = (msg: string): never => { throw new BackstoreError(BackstoreErrorCode.IO, msg); };

export function checkSnapshotName(name: string): void {
  if (!SNAPSHOT_NAME_RE.test(name)) {
    fail(`Invalid snapshot name '${name}': use letters, digits, '_' and '-' (at most 128, starting with a letter or digit).`);
  }
}

/** Reads a snapshot object; null when there is none of that name. */
export async function readSnapshot(bucket: Bucket, prefix: string, name: string, timeoutMs: number): Promise<SnapshotObject | null> {
  const key = keys.snapshot(prefix, name);
  const body = await bucket.get(key, timeoutMs);
  if (!body) return null;
  const v = parseJson(body, key) as Partial<SnapshotObject>;
  decodeRootV2(v);
  if (!v.snapshot || typeof v.snapshot.created !== 'string') throw new Error(`${key}: not a snapshot object`);
  return v as SnapshotObject;
}

export async function listDependents(bucket: Bucket, prefix: string, name: string, timeoutMs: number): Promise<Array<{ key: string; record: DependentRecord | null }>> {
  const out: Array<{ key: string; record: DependentRecord | null }> = [];
  for (const key of await bucket.list(keys.dependents(prefix, name), Infinity, timeoutMs)) {
    const body = await bucket.get(key, timeoutMs);
    out.push({ key, record: body ? parseJson(body, key) as DependentRecord : null });
  }
  return out;
}

/** Why snapshot commands are refused on this volume now, or null (only the writer takes and deletes snapshots). */
export type SnapshotGate = () => string | null;

/** The snapshot operations of one open object volume (the writer). */
export class VolumeSnapshots {
  private readonly lock = new Mutex();

  /** The volume's current parts: a promotion replaces the manifest and the cache (agent/sites/promote.ts). */
  constructor(private readonly bucket: Bucket, private readonly prefix: string,
    private readonly parts: () => { manifest: VolumeManifest; cache: ChunkCache }, private readonly lease: WriterLease, private readonly barrier: IoBarrier,
    private readonly o: { timeoutMs: number; flushTimeoutMs: number; size: number; what: string }) {}

  private get manifest(): VolumeManifest { return this.parts().manifest; }
  private get cache(): ChunkCache { return this.parts().cache; }

  private checkWriter(action: string): void {
    const l = this.lease;
    if (l.role === 'reader') fail(`Cannot ${action} ${this.o.what}: it is a reader (the writer lease is held by ${l.heldBy ?? 'another agent'}, epoch ${l.epoch}); use the writer's agent.`);
    if (l.role === 'fenced') fail(`Cannot ${action} ${this.o.what}: ${l.lastError ?? 'the writer lease was lost'}.`);
    if (!l.mayMutate(this.o.timeoutMs)) fail(`Cannot ${action} ${this.o.what}: the writer lease is not renewed (${l.lastError ?? 'bucket unreachable'}).`);
  }

  private bucketDown(e: unknown): never {
    if (e instanceof BackstoreError) throw e;
    throw new BackstoreError(BackstoreErrorCode.NOT_READY, `bucket unreachable: ${(e as Error).message}`, { cause: e });
  }

  /**
   * A crash-consistent snapshot: new writes wait while everything acknowledged so far is uploaded and named by
   * a root; the snapshot object (a copy of that root) is written only once the root is durable.
   */
  async create(name: string): Promise<SnapshotInfo> {
    checkSnapshotName(name);
    return this.lock.run(async () => {
      this.checkWriter('snapshot');
      let existing;
      try {
        existing = await this.bucket.get(keys.snapshot(this.prefix, name), this.o.timeoutMs);
      } catch (e) {
        this.bucketDown(e);
      }
      if (existing) fail(`Snapshot ${name} already exists.`);
      const resume = await this.barrier.freezeWrites();
      try {
        await this.cache.flush();
        if (!await this.cache.flusher.sync(this.o.flushTimeoutMs)) {
          fail(`Snapshot ${name} not taken: the cache could not upload what was written within ${this.o.flushTimeoutMs} ms (${this.cache.stats().last_error ?? 'still uploading'}).`);
        }
        this.checkWriter('snapshot');
        const created = new Date().toISOString();
        const root = await this.manifest.snapshot(async (r) => {
          const obj: SnapshotObject = { ...r, snapshot: { name, created } };
          await this.bucket.put(keys.snapshot(this.prefix, name), frameJson(obj), this.o.timeoutMs, 'application/json');
        }).catch((e: unknown) => this.bucketDown(e));
        return { name, created, generation: root.generation, epoch: root.epoch, size: root.size, clones: 0 };
      } finally {
        resume();
      }
    });
  }

  async list(): Promise<SnapshotInfo[]> {
    try {
      const out: SnapshotInfo[] = [];
      for (const key of await snapshotObjectKeys(this.bucket, this.prefix, this.o.timeoutMs)) {
        const name = snapshotNameOf(this.prefix, key)!;
        const s = await readSnapshot(this.bucket, this.prefix, name, this.o.timeoutMs);
        if (!s) continue;
        const clones = (await this.bucket.list(keys.dependents(this.prefix, name), Infinity, this.o.timeoutMs)).length;
        out.push({ name, created: s.snapshot.created, generation: s.generation, epoch: s.epoch, size: s.size, clones });
      }
      return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
    } catch (e) {
      return this.bucketDown(e);
    }
  }

  /** Deletes a snapshot without dependents, then frees what only it referenced. Returns objects deleted. */
  async delete(name: string): Promise<number> {
    checkSnapshotName(name);
    return this.lock.run(async () => {
      this.checkWriter('delete a snapshot of');
      let deps: Awaited<ReturnType<typeof listDependents>>;
      try {
        if (!await this.bucket.get(keys.snapshot(this.prefix, name), this.o.timeoutMs)) fail(`No snapshot named ${name}.`);
        deps = await listDependents(this.bucket, this.prefix, name, this.o.timeoutMs);
      } catch (e) {
        return this.bucketDown(e);
      }
      if (deps.length) {
        const who = deps.map((d) => d.record ? `s3://${d.record.bucket}/${d.record.prefix}` : d.key).join(', ');
        fail(`Snapshot ${name} has ${deps.length} dependent clone${deps.length > 1 ? 's' : ''} (${who}); delete ${deps.length > 1 ? 'them' : 'it'} first.`);
      }
      try {
        const key = keys.snapshot(this.prefix, name);
        // What it named, read before it goes: only those objects can have become garbage.
        const named = keysOf(this.prefix, await readRoot(this.bucket, this.prefix, key, this.cache.o.chunkSize, this.o.timeoutMs));
        await this.bucket.delete([key], this.o.timeoutMs);
        // +1: the snapshot object itself.
        return 1 + await this.manifest.releaseSnapshot(named);
      } catch (e) {
        return this.bucketDown(e);
      }
    });
  }
}
