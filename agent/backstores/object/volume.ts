// docs/bucket-format.md §Volume descriptor: create or check volume.json, then load the newest manifest.
import type { Logger } from '../../lib/log.js';
import type { Bucket } from './bucket.js';
import { VolumeManifest } from './manifest.js';
import {
  BLOCK_SIZE, DEFAULT_CHUNK_SIZE, FORMAT_VERSION, PAGE_CHUNKS, decodeDescriptor, keys, normalizePrefix, parseJson,
  type VolumeDescriptor,
} from './format.js';

export interface OpenVolumeOptions {
  bucket: Bucket;
  prefix?: string;
  size: number;
  wwn?: string;
  timeoutMs: number;
  retain: number;
  log: Logger;
  /** Writer epoch for the manifest's roots. */
  epoch?: number;
}

export async function openVolume(o: OpenVolumeOptions): Promise<{ descriptor: VolumeDescriptor; manifest: VolumeManifest; prefix: string }> {
  const prefix = normalizePrefix(o.prefix);
  const key = keys.descriptor(prefix);
  const existing = await o.bucket.get(key, o.timeoutMs);
  let descriptor: VolumeDescriptor;
  if (existing) {
    descriptor = decodeDescriptor(parseJson(existing, key));
    if (descriptor.size !== o.size) {
      throw new Error(`bucket volume s3://${o.bucket.name}/${key} has size ${descriptor.size} bytes but the configuration says ${o.size}`);
    }
    if (descriptor.chunk_size > 4 * 1024 * 1024 || descriptor.chunk_size < 1024 * 1024 || descriptor.page_chunks !== PAGE_CHUNKS || descriptor.block_size !== BLOCK_SIZE) {
      throw new Error(`bucket volume s3://${o.bucket.name}/${key} has an unsupported geometry (chunk ${descriptor.chunk_size}, page ${descriptor.page_chunks})`);
    }
    if (o.wwn && descriptor.wwn && o.wwn !== descriptor.wwn) o.log.warn({ bucket_wwn: descriptor.wwn, wwn: o.wwn }, 'object volume: wwn differs from the bucket descriptor');
  } else {
    descriptor = {
      format: 'outpost-volume', version: FORMAT_VERSION, size: o.size, chunk_size: DEFAULT_CHUNK_SIZE, block_size: BLOCK_SIZE,
      page_chunks: PAGE_CHUNKS, wwn: o.wwn ?? null, created: new Date().toISOString(),
    };
    await o.bucket.put(key, Buffer.from(JSON.stringify(descriptor, null, 2)), o.timeoutMs, 'application/json');
    o.log.info({ key }, 'object volume: created descriptor');
  }
  const manifest = await VolumeManifest.load({
    bucket: o.bucket, prefix, size: o.size, chunkSize: descriptor.chunk_size, retain: o.retain, timeoutMs: o.timeoutMs, log: o.log, epoch: o.epoch,
  });
  return { descriptor, manifest, prefix };
}
