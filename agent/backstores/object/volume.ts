// docs/bucket-format.md §Volume descriptor, §Encryption, §Format 1: create or check volume.json (and the volume
// key against it), then load the newest manifest; a format 1 volume is upgraded by its first manifest write.
import type { Logger } from '../../lib/log.js';
import type { Bucket } from './bucket.js';
import { VolumeManifest } from './manifest.js';
import { keyCheck } from './crypto.js';
import {
  BLOCK_SIZE, DEFAULT_CHUNK_SIZE, FORMAT_VERSION, PAGE_CHUNKS, PAGE_CHUNKS_V1, decodeDescriptor, keys, normalizePrefix, parseJson,
  frameJson, type VolumeDescriptor,
} from './format.js';

export interface OpenVolumeOptions {
  bucket: Bucket;
  prefix?: string;
  size: number;
  wwn?: string;
  timeoutMs: number;
  retain: number;
  log: Logger;
  /** The volume key (AES-256-GCM), or null for an unencrypted volume. */
  key: Buffer | null;
  /** How the key is configured, for messages (never the key itself). */
  keyHint: string;
  epoch?: number;
  /** volume.json as the caller just read it (saves a GET on the open a restore waits for); absent: read it. */
  descriptor?: VolumeDescriptor;
}

/** Refuses a stored descriptor this configuration (size, geometry, volume key) does not match. */
export function checkDescriptor(d: VolumeDescriptor, where: string, o: Pick<OpenVolumeOptions, 'size' | 'wwn' | 'log' | 'key' | 'keyHint'>): void {
  if (d.size !== o.size) {
    throw new Error(`${where} has size ${d.size} bytes but the configuration says ${o.size}`);
  }
  const pageChunks = d.version === 1 ? PAGE_CHUNKS_V1 : PAGE_CHUNKS;
  if (d.chunk_size > 4 * 1024 * 1024 || d.chunk_size < 1024 * 1024 || d.page_chunks !== pageChunks || d.block_size !== BLOCK_SIZE) {
    throw new Error(`${where} has an unsupported geometry (chunk ${d.chunk_size}, page ${d.page_chunks})`);
  }
  const enc = d.encryption ?? null;
  if (enc && !o.key) throw new Error(`${where} is encrypted: its key is needed (${o.keyHint})`);
  if (!enc && o.key) throw new Error(`${where} was created without encryption; remove the key (${o.keyHint}) or use a new prefix`);
  if (enc && o.key && keyCheck(o.key) !== enc.key_check) throw new Error(`${where}: wrong volume key (${o.keyHint}); the key check does not match`);
  if (o.wwn && d.wwn && o.wwn !== d.wwn) o.log.warn({ bucket_wwn: d.wwn, wwn: o.wwn }, 'object volume: wwn differs from the bucket descriptor');
}

export async function openVolume(o: OpenVolumeOptions): Promise<{ descriptor: VolumeDescriptor; manifest: VolumeManifest; prefix: string }> {
  const prefix = normalizePrefix(o.prefix);
  const key = keys.descriptor(prefix);
  const where = `bucket volume s3://${o.bucket.name}/${key}`;
  const existing = o.descriptor ? null : await o.bucket.get(key, o.timeoutMs);
  let descriptor: VolumeDescriptor;
  if (o.descriptor || existing) {
    descriptor = o.descriptor ?? decodeDescriptor(parseJson(existing!, key));
    checkDescriptor(descriptor, where, o);
  } else {
    descriptor = {
      format: 'outpost-volume', version: FORMAT_VERSION, size: o.size, chunk_size: DEFAULT_CHUNK_SIZE, block_size: BLOCK_SIZE,
      page_chunks: PAGE_CHUNKS, wwn: o.wwn ?? null, created: new Date().toISOString(), epoch: o.epoch ?? 0,
      encryption: o.key ? { algorithm: 'AES-256-GCM', key_check: keyCheck(o.key) } : null,
    };
    await o.bucket.put(key, frameJson(descriptor), o.timeoutMs, 'application/json');
    o.log.info({ key, encrypted: Boolean(o.key) }, 'object volume: created descriptor');
  }
  const d = descriptor;
  const manifest = await VolumeManifest.load({
    bucket: o.bucket, prefix, size: o.size, chunkSize: d.chunk_size, retain: o.retain, timeoutMs: o.timeoutMs, log: o.log, epoch: o.epoch,
    // Format 1 → 2: the descriptor says 2 before the first format 2 root, so a format 1 agent refuses the volume
    // from then on instead of writing format 1 roots beside it.
    onUpgrade: d.version === 1 ? async () => {
      const up: VolumeDescriptor = { ...d, version: FORMAT_VERSION, page_chunks: PAGE_CHUNKS, epoch: manifest.epoch, encryption: null };
      await o.bucket.put(key, frameJson(up), o.timeoutMs, 'application/json');
      Object.assign(d, up);
      o.log.info({ key }, 'object volume: upgraded from format 1 to format 2');
    } : undefined,
  });
  return { descriptor, manifest, prefix };
}
