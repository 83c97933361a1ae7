// RFC 7143 §11.2: encodes typed headers into a BHS and frames a PDU (BHS, digests, data, padding) as views.
import { LAYOUTS, FIXED_BYTE1 } from './layout.js';
import { encodeLun } from './lun.js';
import { BHS_LENGTH } from './constants.js';
import { crc32c, writeDigest } from '../../lib/crc32c.js';
import { pad4, writeUInt24BE, totalLength } from '../../lib/bytes.js';
import type { Header } from './types.js';

const ZERO_PAD = Buffer.alloc(4);

/** Writes `h` into out[off..off+48). Bytes 4..7 (AHS and data lengths) are set by the caller or framePdu. */
export function encodeHeader(h: Header, out: Buffer = Buffer.alloc(BHS_LENGTH), off = 0): Buffer {
  const bhs = off === 0 && out.length === BHS_LENGTH ? out : out.subarray(off, off + BHS_LENGTH);
  bhs.fill(0);
  const layout = LAYOUTS[h.opcode];
  if (!layout) throw new RangeError(`no layout for opcode ${h.opcode}`);
  bhs[0] = h.opcode | (h.immediate ? 0x40 : 0);
  bhs[1] = FIXED_BYTE1[h.opcode] ?? 0;
  bhs.writeUInt32BE(h.itt >>> 0, 16);
  const rec = h as unknown as Record<string, unknown>;
  for (const f of layout) {
    const v = rec[f.name];
    switch (f.kind) {
      case 'u8': bhs[f.off] = (v as number) & 0xff; break;
      case 'u16': bhs.writeUInt16BE((v as number) & 0xffff, f.off); break;
      case 'u32': bhs.writeUInt32BE((v as number) >>> 0, f.off); break;
      case 'lun': encodeLun((v as number) ?? 0, bhs, f.off); break;
      case 'isid': Buffer.from(String(v ?? '').padStart(12, '0'), 'hex').copy(bhs, f.off); break;
      case 'flag': if (v) bhs[f.off]! |= f.mask; break;
      case 'bits': bhs[f.off]! |= (((v as number) ?? 0) << f.shift) & f.mask; break;
      case 'bytes': if (v) (v as Buffer).copy(bhs, f.off, 0, Math.min(f.len, (v as Buffer).length)); break;
    }
  }
  return bhs;
}

export interface FrameOptions {
  headerDigest: boolean;
  dataDigest: boolean;
}

/**
 * Frames one PDU as a list of buffers ready for writev: BHS (+AHS) (+header digest) in `headerSpace`
 * (a reusable buffer of at least 52 + ahs bytes), then the data views, padding and data digest.
 */
export function framePdu(
  h: Header, data: readonly Buffer[], opts: FrameOptions, headerSpace?: Buffer, ahs?: Buffer,
): Buffer[] {
  const ahsLen = ahs?.length ?? 0;
  const hdrLen = BHS_LENGTH + ahsLen + (opts.headerDigest ? 4 : 0);
  const space = headerSpace && headerSpace.length >= hdrLen ? (headerSpace.length === hdrLen ? headerSpace : headerSpace.subarray(0, hdrLen)) : Buffer.allocUnsafe(hdrLen);
  encodeHeader(h, space, 0);
  const dataLength = totalLength(data);
  space[4] = ahsLen >> 2;
  writeUInt24BE(space, dataLength, 5);
  if (ahs && ahsLen) ahs.copy(space, BHS_LENGTH);
  if (opts.headerDigest) writeDigest(crc32c(space.subarray(0, BHS_LENGTH + ahsLen)), space, BHS_LENGTH + ahsLen);
  const out: Buffer[] = [space];
  if (dataLength === 0) return out;
  for (const d of data) if (d.length) out.push(d);
  const p = pad4(dataLength);
  if (p) out.push(ZERO_PAD.subarray(0, p));
  if (opts.dataDigest) {
    const dig = Buffer.allocUnsafe(4);
    writeDigest(crc32c(out.slice(1)), dig);
    out.push(dig);
  }
  return out;
}
