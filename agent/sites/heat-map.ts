// docs/bucket-format.md §Heat map: which chunks a volume's initiators read recently — exponentially decayed read
// counts per chunk, bounded in size — kept by the writer and written as `<prefix>heat/<epoch key>.json` beside
// the manifests (every heat_interval_ms when it changed, and at close), so a restoring site prefetches those first.
import type { Logger } from '../lib/log.js';

/** The object as stored (JSON). */
export interface HeatObject {
  format: 'outpost-heat';
  version: 1;
  epoch: number;
  written: string;
  chunk_size: number;
  half_life_s: number;
  /** [chunk index, decayed read count at `written`], hottest first. */
  chunks: Array<[number, number]>;
}

const EPOCH_MAX = 0xffffffff;

export const heatKeys = {
  dir: 'heat/',
  /** Relative to the volume prefix; the epoch inverted so that a listing shows the newest writer's map first. */
  object: (epoch: number) => `heat/${(EPOCH_MAX - epoch).toString(16).padStart(8, '0')}.json`,
} as const;

export function decodeHeat(buf: Buffer): HeatObject {
  const h = JSON.parse(buf.toString('utf8')) as Partial<HeatObject>;
  if (h?.format !== 'outpost-heat' || h.version !== 1 || !Number.isSafeInteger(h.chunk_size) || !Array.isArray(h.chunks)) {
    throw new Error('heat map: not an outpost heat map');
  }
  for (const e of h.chunks) {
    if (!Array.isArray(e) || !Number.isSafeInteger(e[0]) || e[0] < 0 || typeof e[1] !== 'number' || !(e[1] >= 0)) throw new Error('heat map: bad chunk entry');
  }
  return h as HeatObject;
}

/** Decayed read counts per chunk: a read adds 1; every half-life halves what was there. */
export class HeatMap {
  private readonly score = new Map<number, { s: number; t: number }>();
  /** Reads recorded since the map was last taken (written). */
  changes = 0;

  constructor(private readonly halfLifeMs: number, private readonly maxEntries: number) {}

  private decayed(v: { s: number; t: number }, now: number): number {
    return v.s * Math.pow(0.5, Math.max(0, now - v.t) / this.halfLifeMs);
  }

  record(index: number, now = Date.now()): void {
    const v = this.score.get(index);
    if (v) { v.s = this.decayed(v, now) + 1; v.t = now; } else this.score.set(index, { s: 1, t: now });
    this.changes++;
    // Bounded: past twice the bound, only the hottest `maxEntries` stay.
    if (this.score.size > 2 * this.maxEntries) this.prune(now);
  }

  /** Seeds the map from a stored one (a new writer carries its predecessor's heat on). */
  seed(h: HeatObject, now = Date.now()): void {
    const t = Date.parse(h.written) || now;
    for (const [i, s] of h.chunks) if (!this.score.has(i)) this.score.set(i, { s, t: Math.min(t, now) });
    if (this.score.size > this.maxEntries) this.prune(now);
  }

  private prune(now: number): void {
    const keep = this.top(this.maxEntries, now);
    this.score.clear();
    for (const [i, s] of keep) this.score.set(i, { s, t: now });
  }

  /** The `n` hottest chunks, hottest first (ties: lower index first). */
  top(n: number, now = Date.now()): Array<[number, number]> {
    return [...this.score].map(([i, v]) => [i, this.decayed(v, now)] as [number, number])
      .filter(([, s]) => s > 1e-6)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, n);
  }

  get size(): number {
    return this.score.size;
  }

  toObject(epoch: number, chunkSize: number, now = Date.now()): HeatObject {
    return {
      format: 'outpost-heat', version: 1, epoch, written: new Date(now).toISOString(), chunk_size: chunkSize,
      half_life_s: this.halfLifeMs / 1000, chunks: this.top(this.maxEntries, now).map(([i, s]) => [i, Math.round(s * 1000) / 1000]),
    };
  }
}

/** What the recorder needs of an object backstore (ObjectBackstore implements it). */
export interface HeatSource {
  readonly role: string;
  readonly epoch: number;
  readonly chunkSize: number;
  onChunkRead(fn: (index: number) => void): void;
  onClose(fn: () => Promise<void>): void;
  putMeta(rel: string, body: Buffer): Promise<boolean>;
  getMeta(rel: string): Promise<Buffer | null>;
  listMeta(rel: string, limit?: number): Promise<string[]>;
}

export interface HeatOptions {
  /** How often a changed map is written, default 60 000 ms. */
  intervalMs: number;
  halfLifeMs: number;
  maxEntries: number;
  log: Logger;
}

/** The newest heat map stored for the volume (null: none, or unreadable — prefetch is only an optimisation). */
export async function loadHeat(src: Pick<HeatSource, 'getMeta' | 'listMeta'>, log: Logger): Promise<HeatObject | null> {
  try {
    const [key] = await src.listMeta(heatKeys.dir, 1);
    const body = key ? await src.getMeta(key) : null;
    return body ? decodeHeat(body) : null;
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'heat map: could not be read; no prefetch order');
    return null;
  }
}

/**
 * Records the reads of a LUN and, while it is the writer, writes the heat map: not on every read, but when it has
 * changed, at most every intervalMs, and once more at close. Returns a stop function.
 */
export function recordHeat(src: HeatSource, o: HeatOptions): { map: HeatMap; stop(): void; write(): Promise<boolean> } {
  const map = new HeatMap(o.halfLifeMs, o.maxEntries);
  let seeded = false;
  src.onChunkRead((i) => map.record(i));
  const write = async (): Promise<boolean> => {
    if (src.role !== 'writer') return false;
    if (!seeded) {
      seeded = true;
      const prev = await loadHeat(src, o.log);
      if (prev && prev.chunk_size === src.chunkSize) map.seed(prev);
    }
    if (map.changes === 0) return false;
    const changes = map.changes;
    const ok = await src.putMeta(heatKeys.object(src.epoch), Buffer.from(JSON.stringify(map.toObject(src.epoch, src.chunkSize))));
    if (ok) map.changes -= changes;
    return ok;
  };
  let busy: Promise<unknown> = Promise.resolve();
  const tick = (): void => {
    busy = busy.then(write).catch((e: Error) => o.log.warn({ err: e.message }, 'heat map: write failed; retried at the next interval'));
  };
  const timer = setInterval(tick, Math.max(100, o.intervalMs));
  timer.unref();
  const stop = (): void => clearInterval(timer);
  src.onClose(async () => {
    stop();
    await busy;
    await write().catch((e: Error) => o.log.warn({ err: e.message }, 'heat map: last write failed'));
  });
  return { map, stop, write };
}
