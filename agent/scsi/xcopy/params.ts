// SPC-4 §6.4 EXTENDED COPY (LID1) parameter list: header, CSCD (target) descriptors, segment descriptors.
import { readU64 } from '../cdb.js';
import { SenseError, paramField } from '../sense.js';

/** Copy manager limits, reported by RECEIVE COPY RESULTS (OPERATING PARAMETERS) and VPD page 8Fh. */
export const XcopyLimits = {
  maxTargetDescriptors: 8,
  maxSegmentDescriptors: 16,
  maxDescriptorListLength: 1024,
  maxSegmentLength: 256 * 1024 * 1024,
  maxInlineData: 0,
} as const;

export const HEADER_LENGTH = 16;
export const TARGET_DESCRIPTOR_LENGTH = 32;
export const IDENTIFICATION_DESCRIPTOR = 0xe4;
export const BLOCK_TO_BLOCK = 0x02;
export const IMPLEMENTED_DESCRIPTORS = [BLOCK_TO_BLOCK, IDENTIFICATION_DESCRIPTOR];

export const ListIdUsage = { HOLD: 0, NO_HOLD: 2, NO_LIST_ID: 3 } as const;

export interface TargetDescriptor {
  /** NUL bit: a null device — no data can move to or from it. */
  readonly nul: boolean;
  readonly codeSet: number;
  readonly association: number;
  readonly designatorType: number;
  readonly designator: Buffer;
  /** Disk block length from the device type specific parameters (0 when not given). */
  readonly blockLength: number;
}

export interface BlockSegment {
  readonly index: number;
  readonly src: number;
  readonly dst: number;
  readonly blocks: number;
  readonly srcLba: number;
  readonly dstLba: number;
  /** DC=1: the block count is in destination blocks. */
  readonly dc: boolean;
}

export interface CopyParams {
  readonly listId: number;
  readonly listIdUsage: number;
  readonly targets: TargetDescriptor[];
  readonly segments: BlockSegment[];
}

function parseTarget(d: Buffer, off: number): TargetDescriptor {
  if (d[0] !== IDENTIFICATION_DESCRIPTOR) throw new SenseError('UNSUPPORTED_TARGET_DESCRIPTOR_TYPE', paramField(off));
  // LU ID TYPE (byte 1 bits 7-6) qualifies a LU IDENTIFIER field, which the identification descriptor does not
  // have: the designator alone names the LU, so the field is ignored (as LIO does; libiscsi 1.19 expects GOOD).
  if ((d[1] & 0x1f) !== 0) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 1, 4)); // block devices only
  const len = d[7];
  if (len > 20) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 7));
  return {
    nul: (d[1] & 0x20) !== 0,
    codeSet: d[4] & 0x0f,
    association: (d[5] >> 4) & 3,
    designatorType: d[5] & 0x0f,
    designator: d.subarray(8, 8 + len),
    blockLength: (d[29] << 16) | d.readUInt16BE(30),
  };
}

function parseSegment(d: Buffer, off: number): BlockSegment {
  if (d[0] !== BLOCK_TO_BLOCK) throw new SenseError('UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE', paramField(off));
  if (d.readUInt16BE(2) !== 0x18) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 2));
  if (d[1] & 0x01) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 1, 0)); // CAT: no residue handling
  return {
    index: 0,
    dc: (d[1] & 0x02) !== 0,
    src: d.readUInt16BE(4),
    dst: d.readUInt16BE(6),
    blocks: d.readUInt16BE(10),
    srcLba: readU64(d, 12),
    dstLba: readU64(d, 20),
  };
}

/**
 * Validates and decodes the parameter list. Length errors first (the list must hold what its header
 * announces), then descriptor counts, then each descriptor — so nothing runs on a malformed list.
 */
export function parseCopyParams(p: Buffer): CopyParams {
  if (p.length < HEADER_LENGTH) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const listId = p[0];
  const listIdUsage = (p[1] >> 3) & 3;
  if (listIdUsage === 1) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(1, 4));
  if (p[1] & 0x20) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(1, 5)); // STR: no sequential striping
  const tdl = p.readUInt16BE(2);
  const sdl = p.readUInt32BE(8);
  const inline = p.readUInt32BE(12);
  if (HEADER_LENGTH + tdl + sdl + inline > p.length) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  if (tdl + sdl > XcopyLimits.maxDescriptorListLength) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  if (inline > XcopyLimits.maxInlineData) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(12));
  if (tdl % TARGET_DESCRIPTOR_LENGTH !== 0) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(2));
  const targetCount = tdl / TARGET_DESCRIPTOR_LENGTH;
  if (targetCount > XcopyLimits.maxTargetDescriptors) throw new SenseError('TOO_MANY_TARGET_DESCRIPTORS', paramField(2));
  // Walk segment descriptors by their own length fields to count them before decoding any.
  const segOffsets: number[] = [];
  const segStart = HEADER_LENGTH + tdl;
  for (let off = segStart; off < segStart + sdl; ) {
    if (off + 4 > segStart + sdl) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
    segOffsets.push(off);
    off += 4 + p.readUInt16BE(off + 2);
    if (off > segStart + sdl) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  }
  if (segOffsets.length > XcopyLimits.maxSegmentDescriptors) throw new SenseError('TOO_MANY_SEGMENT_DESCRIPTORS', paramField(8));
  const targets: TargetDescriptor[] = [];
  for (let i = 0; i < targetCount; i++) {
    const off = HEADER_LENGTH + i * TARGET_DESCRIPTOR_LENGTH;
    targets.push(parseTarget(p.subarray(off, off + TARGET_DESCRIPTOR_LENGTH), off));
  }
  const segments = segOffsets.map((off, index) => ({ ...parseSegment(p.subarray(off, off + 4 + p.readUInt16BE(off + 2)), off), index }));
  return { listId, listIdUsage, targets, segments };
}
