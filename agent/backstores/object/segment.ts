// docs/bucket-format.md §Records, §Segments, §Chunk objects: data objects are sequences of records (at most
// RECORD_SIZE plaintext bytes), each checksummed (crc32c of the stored bytes) and optionally sealed (AES-256-GCM).
import { BackstoreError, BackstoreErrorCode } from '../backstore.js';
import { crc32c } from '../../lib/crc32c.js';
import { SEAL_OVERHEAD, open, seal } from './crypto.js';
import { RECORD_SIZE } from './format.js';

export class RecordCodec {
  /** Records that failed their checksum or authentication (a medium error each). */
  corrupt = 0;

  constructor(private readonly key: Buffer | null, private readonly onCorrupt: (what: string) => void = () => undefined) {}

  get overhead(): number {
    return this.key ? SEAL_OVERHEAD : 0;
  }

  encode(plain: Buffer): { stored: Buffer; crc: number } {
    const stored = this.key ? seal(this.key, plain) : plain;
    return { stored, crc: crc32c(stored) };
  }

  /** The record's plaintext; a checksum or tag mismatch is an unrecovered read error, never data. */
  decode(stored: Buffer, crc: number | null, what: string): Buffer {
    if (crc !== null && crc32c(stored) !== crc) this.fail(`${what}: checksum mismatch`);
    if (!this.key) return stored;
    try {
      return open(this.key, stored);
    } catch {
      return this.fail(`${what}: authentication failed (wrong volume key or tampered record)`);
    }
  }

  private fail(msg: string): never {
    this.corrupt++;
    this.onCorrupt(msg);
    throw new BackstoreError(BackstoreErrorCode.IO, msg);
  }
}

/** Where record `r` of a whole-chunk object lies. */
export function baseRecordSpan(r: number, chunkSize: number, overhead: number): { at: number; rlen: number; plain: number } {
  const plain = Math.min(RECORD_SIZE, chunkSize - r * RECORD_SIZE);
  return { at: r * (RECORD_SIZE + overhead), rlen: plain + overhead, plain };
}

/** A whole chunk as one object: its records back to back, and their checksums for the manifest. */
export function buildChunkObject(codec: RecordCodec, data: Buffer): { body: Buffer; crcs: number[] } {
  const parts: Buffer[] = [];
  const crcs: number[] = [];
  for (let at = 0; at < data.length; at += RECORD_SIZE) {
    const r = codec.encode(data.subarray(at, Math.min(data.length, at + RECORD_SIZE)));
    parts.push(r.stored);
    crcs.push(r.crc);
  }
  // Unencrypted records are the plaintext back to back: the chunk itself is the body (no 4 MiB copy per upload).
  return { body: codec.overhead === 0 ? data : Buffer.concat(parts), crcs };
}

/** Accumulates records for one log segment. */
export class SegmentBuilder {
  private readonly parts: Buffer[] = [];
  size = 0;
  plainBytes = 0;

  constructor(private readonly codec: RecordCodec) {}

  /** Appends one record (≤ RECORD_SIZE bytes); returns where it lies. */
  add(plain: Buffer): { at: number; rlen: number; crc: number } {
    if (plain.length > RECORD_SIZE) throw new Error('segment record too large');
    const { stored, crc } = this.codec.encode(plain);
    const at = this.size;
    this.parts.push(stored);
    this.size += stored.length;
    this.plainBytes += plain.length;
    return { at, rlen: stored.length, crc };
  }

  body(): Buffer {
    return Buffer.concat(this.parts);
  }
}
