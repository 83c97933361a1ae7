// Import progress (docs/import.md §Progress): which regions of the new LUN hold their final bytes, kept in
// the LUN's cache dir next to the cache journal and replaced atomically (write, fsync, rename, fsync dir).
import { open, readFile, rename, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** One bit per region: set once the object volume holds the region's bytes (copied or written here). */
export class RegionMap {
  readonly bits: Uint8Array;
  private set = 0;

  constructor(readonly regions: number, bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(Math.ceil(regions / 8));
    for (let i = 0; i < regions; i++) if (this.has(i)) this.set++;
  }

  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  mark(i: number): void {
    if (this.has(i)) return;
    this.bits[i >> 3]! |= 1 << (i & 7);
    this.set++;
  }

  get count(): number {
    return this.set;
  }

  get complete(): boolean {
    return this.set === this.regions;
  }

  /** The first region at or after `from` not yet marked (wrapping), or -1 when all are. */
  nextUnmarked(from: number): number {
    for (let k = 0; k < this.regions; k++) {
      const i = (from + k) % this.regions;
      if (!this.has(i)) return i;
    }
    return -1;
  }

  clone(): RegionMap {
    return new RegionMap(this.regions, Uint8Array.from(this.bits));
  }
}

export interface ProgressRecord {
  version: 1;
  /** The source URL without its secret. */
  source: string;
  size: number;
  region_size: number;
  /** RegionMap bits, base64. */
  copied: string;
  /** Set when every region is copied and the source was let go. */
  done: boolean;
}

export function progressPath(cacheDir: string): string {
  return join(cacheDir, 'import-progress.json');
}

export async function readProgress(cacheDir: string): Promise<ProgressRecord | undefined> {
  let text: string;
  try {
    text = await readFile(progressPath(cacheDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const r = JSON.parse(text) as ProgressRecord;
  if (r.version !== 1 || typeof r.copied !== 'string' || !Number.isSafeInteger(r.size) || !Number.isSafeInteger(r.region_size) || r.region_size <= 0) {
    throw new Error(`import progress record ${progressPath(cacheDir)} is not one this agent wrote`);
  }
  return r;
}

export function regionsOf(r: ProgressRecord): RegionMap {
  const n = Math.ceil(r.size / r.region_size);
  const bits = Buffer.from(r.copied, 'base64');
  if (bits.length !== Math.ceil(n / 8)) throw new Error(`import progress record: ${bits.length} bytes of bits for ${n} regions`);
  return new RegionMap(n, new Uint8Array(bits));
}

/** Replaces the record so that a crash leaves either the old one or the new one, whole. */
export async function writeProgress(cacheDir: string, r: ProgressRecord): Promise<void> {
  const path = progressPath(cacheDir);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(r) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(dirname(path), 'r');
  try { await d.sync(); } finally { await d.close(); }
}

export function encodeRegions(m: RegionMap): string {
  return Buffer.from(m.bits).toString('base64');
}
