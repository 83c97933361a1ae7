// Snapshots of object LUNs from the shell (`/backstores/object/NAME snapshot create|list|delete`), each operation
// reported as a job; the bucket side is agent/backstores/object/snapshots.ts (docs/bucket-format.md §Snapshot, clone).
import type { Backstore } from '../backstores/backstore.js';
import type { SnapshotInfo, VolumeSnapshots } from '../backstores/object/snapshots.js';
import { jobs } from '../jobs.js';

/** The snapshot operations of a running object backstore, or why there are none. */
export function snapshotsOf(bs: Backstore | undefined, path: string): VolumeSnapshots | string {
  if (!bs) return `${path} is not open`;
  const direct = (bs as { snapshots?: VolumeSnapshots }).snapshots;
  if (direct) return direct;
  // An object LUN exported while its bucket was unreachable at start (backstores/object/deferred.ts).
  const inner = (bs as { opened?: Backstore }).opened;
  const viaInner = inner && (inner as { snapshots?: VolumeSnapshots }).snapshots;
  if (viaInner) return viaInner;
  if ('opened' in bs) return `bucket unreachable: ${path} has not opened its volume yet`;
  return `${path} has no snapshots (a read-only snapshot export)`;
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u === 0 ? v : v.toFixed(1)}${units[u]}`;
}

/** `snapshot list` as a table (one row per snapshot, oldest first). */
export function renderSnapshots(path: string, list: readonly SnapshotInfo[]): string[] {
  if (list.length === 0) return [`No snapshots of ${path}.`];
  const rows = [['NAME', 'CREATED', 'GENERATION', 'SIZE', 'CLONES'],
    ...list.map((s) => [s.name, s.created, String(s.generation), human(s.size), String(s.clones)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

export async function createSnapshot(ops: VolumeSnapshots, path: string, name: string): Promise<SnapshotInfo> {
  const job = jobs.start('snapshot', path, { unit: 'objects', phase: `flush point for ${name}` });
  try {
    const s = await ops.create(name);
    job.advance(1);
    job.finish();
    return s;
  } catch (e) {
    job.fail(e);
    throw e;
  }
}

/** Deletes a snapshot; the GC pass that follows is its own job. Returns the objects deleted. */
export async function deleteSnapshot(ops: VolumeSnapshots, path: string, name: string): Promise<number> {
  const job = jobs.start('gc', path, { unit: 'objects', phase: `freeing what only snapshot ${name} held` });
  try {
    const n = await ops.delete(name);
    job.advance(n);
    job.finish();
    return n;
  } catch (e) {
    job.fail(e);
    throw e;
  }
}
