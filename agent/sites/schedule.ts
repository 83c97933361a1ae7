// Snapshot schedules per object LUN: attributes snapshot_interval (e.g. 15m, 1h, 1d; 0 = off) and snapshot_keep
// (K) on the storage object, persisted in saveconfig.json; snapshots named auto-<UTC timestamp>, the oldest auto-
// ones beyond K deleted. Only the writer takes them (a reader's agent skips the LUN).
import type { Backstore } from '../backstores/backstore.js';
import type { Logger } from '../lib/log.js';
import { storageObjectPath, type RootConfig, type StorageObjectConfig } from '../config/schema.js';
import { createSnapshot, deleteSnapshot, snapshotsOf } from './snapshots.js';

export const SCHEDULE_ATTRIBUTES = ['snapshot_interval', 'snapshot_keep'] as const;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a snapshot_interval value ('90s', '15m', '1h', '1d'; '0' is off); throws on anything else. */
export function parseInterval(v: string): number {
  const m = /^(\d+)([smhd])$/.exec(v.trim());
  if (v.trim() === '0') return 0;
  if (!m || Number(m[1]) === 0) throw new Error(`snapshot_interval '${v}' must be a number with a unit (s, m, h, d), for example 1h; 0 turns the schedule off.`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Validates and stores a schedule attribute on an object storage object (`set attribute …`). */
export function setScheduleAttribute(attrs: Record<string, string | number | boolean>, name: string, value: string): void {
  if (name === 'snapshot_interval') {
    parseInterval(value);
    attrs[name] = value.trim();
  } else {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) throw new Error(`snapshot_keep '${value}' must be a whole number from 1 to 10000.`);
    attrs[name] = Number(value);
  }
}

function scheduleOf(so: StorageObjectConfig): { every: number; keep: number } | null {
  const raw = so.attributes?.snapshot_interval;
  if (raw === undefined) return null;
  try {
    const every = parseInterval(String(raw));
    return every ? { every, keep: Number(so.attributes?.snapshot_keep ?? 24) || 24 } : null;
  } catch {
    return null;
  }
}

/** The `info` line for an object storage object. */
export function scheduleInfo(so: StorageObjectConfig): string {
  const s = scheduleOf(so);
  return s ? `snapshot schedule: every ${String(so.attributes!.snapshot_interval)}, keep ${s.keep} (auto-<UTC timestamp>)` : 'snapshot schedule: none';
}

export function autoName(at: Date): string {
  return `auto-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

export class SnapshotScheduler {
  private timer: NodeJS.Timeout | undefined;
  /** Per LUN: when its last auto snapshot was taken (learnt from the bucket at first sight), and whether one runs. */
  private readonly last = new Map<string, number>();
  private readonly busy = new Set<string>();

  constructor(private readonly o: { model: () => RootConfig; backstore: (path: string) => Backstore | undefined; log: Logger; tickMs?: number }) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    for (const so of this.o.model().storage_objects) {
      if (so.plugin !== 'object' || so.readonly) continue;
      const s = scheduleOf(so);
      const path = storageObjectPath(so);
      if (!s || this.busy.has(path)) continue;
      const ops = snapshotsOf(this.o.backstore(path), path);
      if (typeof ops === 'string') continue;
      if ((this.o.backstore(path)?.stats?.().lease_role ?? 'writer') !== 'writer') continue;
      this.busy.add(path);
      void this.run(path, ops, s).finally(() => this.busy.delete(path));
    }
  }

  private async run(path: string, ops: Exclude<ReturnType<typeof snapshotsOf>, string>, s: { every: number; keep: number }): Promise<void> {
    try {
      let last = this.last.get(path);
      if (last === undefined) {
        const autos = (await ops.list()).filter((x) => x.name.startsWith('auto-'));
        // A schedule just turned on counts from now; after a restart, from the newest auto snapshot.
        last = autos.length ? Date.parse(autos[autos.length - 1]!.created) : Date.now();
        this.last.set(path, last);
      }
      if (Date.now() - last < s.every) return;
      const name = autoName(new Date());
      await createSnapshot(ops, path, name);
      this.last.set(path, Date.now());
      this.o.log.info({ path, snapshot: name }, 'scheduled snapshot taken');
      const autos = (await ops.list()).filter((x) => x.name.startsWith('auto-'));
      for (const old of autos.slice(0, Math.max(0, autos.length - s.keep))) {
        await deleteSnapshot(ops, path, old.name).then(
          () => this.o.log.info({ path, snapshot: old.name }, 'scheduled snapshot expired'),
          (err: Error) => this.o.log.warn({ path, snapshot: old.name, err: err.message }, 'could not delete an expired scheduled snapshot'));
      }
    } catch (err) {
      // Retry in a tenth of the interval (at least 10 s), not at every tick.
      this.last.set(path, Date.now() - s.every + Math.max(10_000, s.every / 10));
      this.o.log.warn({ path, err: (err as Error).message }, 'scheduled snapshot failed');
    }
  }
}
