// CRC32C (Castagnoli) for iSCSI header and data digests (RFC 7143 §12.1, Appendix B), via @node-rs/crc32.
import { crc32c as native } from '@node-rs/crc32';

/** CRC32C over a sequence of views, as if they were one contiguous buffer. */
export function crc32c(parts: Uint8Array | readonly Uint8Array[], initial = 0): number {
  if (parts instanceof Uint8Array) return native(parts, initial) >>> 0;
  let crc = initial;
  for (const p of parts) if (p.length > 0) crc = native(p, crc);
  return crc >>> 0;
}

/** Digest as it travels on the wire: the 32-bit CRC stored little-endian (RFC 7143 §12.1). */
export function writeDigest(crc: number, out: Buffer, offset = 0): void {
  out.writeUInt32LE(crc >>> 0, offset);
}

export function readDigest(buf: Buffer, offset = 0): number {
  return buf.readUInt32LE(offset);
}
