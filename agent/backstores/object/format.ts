// docs/bucket-format.md: object keys, the volume descriptor, manifest roots and manifest pages (format version 1).
import { randomBytes } from 'node:crypto';

export const FORMAT_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
export const BLOCK_SIZE = 512;
/** Chunk entries per manifest page: 1024 × 4 MiB = 4 GiB of volume per page. */
export const PAGE_CHUNKS = 1024;
/** Generations are stored inverted so that a ListObjectsV2 with MaxKeys=1 returns the newest manifest. */
const GEN_MAX = 0xffffffffffffn;

export interface VolumeDescriptor {
  format: 'outpost-volume';
  version: number;
  size: number;
  chunk_size: number;
  block_size: number;
  page_chunks: number;
  wwn: string | null;
  created: string;
}

export interface ManifestRoot {
  format: 'outpost-manifest';
  version: number;
  generation: number;
  /** Writer epoch (docs/writer-lease.md); absent in roots written before leases. */
  epoch?: number;
  created: string;
  size: number;
  chunk_size: number;
  page_chunks: number;
  /** page index (decimal string) → page object id; pages with no chunks are absent. */
  pages: Record<string, string>;
}

export interface ManifestPage {
  format: 'outpost-page';
  version: number;
  page: number;
  /** chunk index (decimal string, absolute) → chunk object id; all-zero chunks are absent. */
  chunks: Record<string, string>;
}

export const keys = {
  descriptor: (prefix: string) => `${prefix}volume.json`,
  chunk: (prefix: string, id: string) => `${prefix}chunks/${id}`,
  page: (prefix: string, id: string) => `${prefix}pages/${id}`,
  manifests: (prefix: string) => `${prefix}manifests/`,
  manifest: (prefix: string, generation: number) =>
    `${prefix}manifests/${(GEN_MAX - BigInt(generation)).toString(16).padStart(12, '0')}.json`,
  snapshots: (prefix: string) => `${prefix}snapshots/`,
} as const;

export function generationOfManifestKey(key: string): number | undefined {
  const m = /manifests\/([0-9a-f]{12})\.json$/.exec(key);
  return m ? Number(GEN_MAX - BigInt(`0x${m[1]}`)) : undefined;
}

/** A content-independent unique id: 16 random bytes, hex. Objects are never rewritten in place. */
export function newObjectId(): string {
  return randomBytes(16).toString('hex');
}

const ID_RE = /^[0-9a-f]{32}$/;

export function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

export function parseJson(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new Error(`${what} is not valid JSON`, { cause: e });
  }
}

export function decodeDescriptor(v: unknown): VolumeDescriptor {
  const d = v as Partial<VolumeDescriptor>;
  if (!d || d.format !== 'outpost-volume') throw new Error('volume.json: not an outpost volume descriptor');
  if (d.version !== FORMAT_VERSION) throw new Error(`volume.json: unsupported format version ${String(d.version)}`);
  for (const k of ['size', 'chunk_size', 'block_size', 'page_chunks'] as const) {
    if (!Number.isSafeInteger(d[k]) || (d[k] as number) <= 0) throw new Error(`volume.json: bad ${k}`);
  }
  return d as VolumeDescriptor;
}

export function decodeManifestRoot(v: unknown): ManifestRoot {
  const m = v as Partial<ManifestRoot>;
  if (!m || m.format !== 'outpost-manifest' || m.version !== FORMAT_VERSION) throw new Error('manifest: bad format/version');
  if (!Number.isSafeInteger(m.generation) || typeof m.pages !== 'object' || m.pages === null) throw new Error('manifest: bad fields');
  for (const [k, id] of Object.entries(m.pages)) {
    if (!/^\d+$/.test(k) || typeof id !== 'string' || !ID_RE.test(id)) throw new Error(`manifest: bad page entry ${k}`);
  }
  return m as ManifestRoot;
}

export function decodeManifestPage(v: unknown, page: number): ManifestPage {
  const p = v as Partial<ManifestPage>;
  if (!p || p.format !== 'outpost-page' || p.version !== FORMAT_VERSION || p.page !== page) throw new Error(`manifest page ${page}: bad header`);
  if (typeof p.chunks !== 'object' || p.chunks === null) throw new Error(`manifest page ${page}: no chunks`);
  for (const [k, id] of Object.entries(p.chunks)) {
    const i = Number(k);
    if (!Number.isSafeInteger(i) || Math.floor(i / PAGE_CHUNKS) !== page || typeof id !== 'string' || !ID_RE.test(id)) {
      throw new Error(`manifest page ${page}: bad chunk entry ${k}`);
    }
  }
  return p as ManifestPage;
}
