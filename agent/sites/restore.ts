// docs/dr.md §Restore: an agent at another site creates an object LUN on a prefix that holds a volume and serves
// it at once with the primary's LU identity (NAA designator and serial from volume.json's wwn); chunks are
// fetched on demand. This file checks the request against the bucket before anything is created.
import { decodeDescriptor, keys, normalizePrefix, parseJson, type VolumeDescriptor } from '../backstores/object/format.js';
import { describeLocation } from '../backstores/object/location.js';
import type { Backstore } from '../backstores/backstore.js';
import type { Logger } from '../lib/log.js';
import { recordHeat } from './heat-map.js';
import { startPrefetch, type PrefetchTarget } from './prefetch.js';

export interface VolumeLocation {
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  force_path_style?: boolean;
}

/** volume.json at the location (null: the prefix holds no volume). Throws, naming the bucket, when it cannot tell. */
export async function probeVolume(loc: VolumeLocation, timeoutMs = 5000): Promise<VolumeDescriptor | null> {
  // Loaded here, not at the top: the shell's command table imports this file and must start fast.
  const { Bucket } = await import('../backstores/object/bucket.js');
  const bucket = new Bucket({ bucket: loc.bucket, endpoint: loc.endpoint, region: loc.region, forcePathStyle: loc.force_path_style,
    connectTimeoutMs: Math.min(3000, timeoutMs) });
  const key = keys.descriptor(normalizePrefix(loc.prefix));
  try {
    const body = await bucket.get(key, timeoutMs);
    return body ? decodeDescriptor(parseJson(body, key)) : null;
  } catch (e) {
    throw new Error(`cannot read ${describeLocation({ ...loc, prefix: key })}: ${(e as Error).message}`);
  } finally {
    bucket.destroy();
  }
}

export interface RestorePlan {
  /** The wwn the LU must carry (the primary's), or undefined when the volume recorded none. */
  wwn?: string;
  /** Lines for the shell after "Created object storage object …". */
  said: string[];
}

/**
 * What creating NAME on `loc` means given what the bucket holds: a new volume (null plan), or the restore of the
 * volume there. Throws a message naming what is wrong — a restore asked for where there is no volume, a size or
 * wwn that differs from the volume's — so the caller creates nothing.
 */
export function planRestore(loc: VolumeLocation, d: VolumeDescriptor | null, want: { size: number; wwn?: string; restore: boolean }): RestorePlan | null {
  const where = describeLocation(loc);
  if (!d) {
    if (want.restore) throw new Error(`${where} holds no Outpost volume (no volume.json): nothing to restore; nothing was created.`);
    return null;
  }
  if (d.size !== want.size) {
    throw new Error(`${where} holds a volume of ${d.size} bytes, not ${want.size}: give its size to restore it (nothing was created).`);
  }
  if (want.wwn && d.wwn && want.wwn !== d.wwn) {
    throw new Error(`${where} holds the volume of wwn ${d.wwn}; wwn=${want.wwn} would give the restored LUN another identity (nothing was created).`);
  }
  const wwn = d.wwn ?? want.wwn ?? undefined;
  return {
    wwn,
    said: [`Restoring the volume at ${where}${wwn ? ` with its LU identity (wwn ${wwn})` : ''}: chunks are fetched on demand.`],
  };
}

/** Settings of an object storage object that the sites layer reads (saveconfig.json keys, all optional). */
interface SiteSettings {
  /** Fetch the heat map's hottest chunks in the background after opening (set by a shell restore). */
  prefetch?: boolean;
  prefetch_concurrency?: number;
  /** How often the writer writes a changed heat map, default 60 000 ms. */
  heat_interval_ms?: number;
  /** Half-life of a read's weight in the heat map, default 1 800 000 ms (30 min). */
  heat_half_life_ms?: number;
  /** Chunks the heat map keeps, default 4096. */
  heat_max_chunks?: number;
}

function positive(v: unknown, dflt: number): number {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : dflt;
}

/**
 * Runtime hook for each opened unit: an object backstore records its reads into the heat map (written while it is
 * the writer) and, when its configuration asks (a restore), prefetches the stored heat map's hottest chunks.
 */
export function attachObjectSites(path: string, so: Record<string, unknown>, b: Backstore, log: Logger): void {
  const t = b as Partial<PrefetchTarget>;
  if (b.plugin !== 'object' || typeof t.onChunkRead !== 'function' || typeof t.warmChunk !== 'function') return; // not open yet (bucket down)
  const s = so as SiteSettings;
  const target = t as PrefetchTarget;
  recordHeat(target, { intervalMs: positive(s.heat_interval_ms, 60_000), halfLifeMs: positive(s.heat_half_life_ms, 1_800_000),
    maxEntries: positive(s.heat_max_chunks, 4096), log: log.child({ backstore: path }) });
  if (s.prefetch === true) startPrefetch(target, { path, log: log.child({ backstore: path }), concurrency: positive(s.prefetch_concurrency, 2) });
}
