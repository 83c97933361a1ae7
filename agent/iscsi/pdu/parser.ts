// RFC 7143 §11.2: decodes a 48-byte BHS into the typed header of its opcode (fields per layout.ts).
import { LAYOUTS } from './layout.js';
import { decodeLun } from './lun.js';
import type { Header } from './types.js';

export class PduFormatError extends Error {
  constructor(readonly code: 'UNKNOWN_OPCODE' | 'BAD_AHS' | 'BAD_LENGTH', message: string) {
    super(message);
  }
}

export function bhsOpcode(bhs: Buffer): number {
  return bhs[0]! & 0x3f;
}

/** Decodes every field of the BHS. CDB bytes are a view into `bhs`. */
export function decodeHeader(bhs: Buffer): Header {
  const opcode = bhsOpcode(bhs);
  const layout = LAYOUTS[opcode];
  if (!layout) throw new PduFormatError('UNKNOWN_OPCODE', `unknown opcode 0x${opcode.toString(16)}`);
  const h: Record<string, unknown> = { opcode, immediate: (bhs[0]! & 0x40) !== 0, itt: bhs.readUInt32BE(16) };
  for (const f of layout) {
    switch (f.kind) {
      case 'u8': h[f.name] = bhs[f.off]; break;
      case 'u16': h[f.name] = bhs.readUInt16BE(f.off); break;
      case 'u32': h[f.name] = bhs.readUInt32BE(f.off); break;
      case 'lun': h[f.name] = decodeLun(bhs, f.off); break;
      case 'isid': h[f.name] = bhs.toString('hex', f.off, f.off + 6); break;
      case 'flag': h[f.name] = (bhs[f.off]! & f.mask) !== 0; break;
      case 'bits': h[f.name] = (bhs[f.off]! & f.mask) >> f.shift; break;
      case 'bytes': h[f.name] = bhs.subarray(f.off, f.off + f.len); break;
    }
  }
  return h as unknown as Header;
}

/** Splits an AHS area into its segments (RFC 7143 §11.2.2). */
export function splitAhs(ahs: Buffer): { type: number; body: Buffer }[] {
  const out: { type: number; body: Buffer }[] = [];
  let off = 0;
  while (off + 4 <= ahs.length) {
    const len = ahs.readUInt16BE(off);
    const type = ahs[off + 2]!;
    const end = off + 3 + len;
    if (end > ahs.length) throw new PduFormatError('BAD_AHS', `AHS segment of ${len} bytes overruns ${ahs.length}`);
    out.push({ type, body: ahs.subarray(off + 3, end) });
    off = end + ((4 - ((3 + len) & 3)) & 3);
  }
  return out;
}
