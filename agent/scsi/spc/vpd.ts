// SPC-4 §7.8 vital product data pages 00h, 80h, 83h, 86h and SBC-4 §6.6 pages B0h, B1h, B2h.
import { writeU64 } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import type { CommandContext } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';
import { thirdPartyCopyPage } from '../xcopy/vpd.js';

const SUPPORTED = [0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2];
const IEEE_OUI = '001405'; // the company id LIO uses: LUs keep their identity when moved between LIO and Outpost

function page(code: number, body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b[1] = code;
  b.writeUInt16BE(body.length, 2);
  body.copy(b, 4);
  return b;
}

/** NAA IEEE Registered Extended (type 6h) designator from the wwn's hex digits — the same on every path. */
export function naaDesignator(wwn: string): Buffer {
  const hex = (wwn.toLowerCase().replace(/[^0-9a-f]/g, '') + '0'.repeat(25)).slice(0, 25);
  return Buffer.from('6' + IEEE_OUI + hex, 'hex');
}

function designator(codeSet: number, piv: boolean, assoc: number, type: number, value: Buffer, protocol = 0): Buffer {
  const b = Buffer.alloc(4 + value.length);
  b[0] = (protocol << 4) | codeSet;
  b[1] = (piv ? 0x80 : 0) | (assoc << 4) | type;
  b[3] = value.length;
  value.copy(b, 4);
  return b;
}

const ISCSI_PROTOCOL = 5;

function deviceIdentification(c: CommandContext): Buffer {
  const lu = c.lu;
  const parts: Buffer[] = [];
  parts.push(designator(1, false, 0, 3, naaDesignator(lu.wwn)));
  const t10 = Buffer.alloc(8 + lu.wwn.length, 0x20);
  t10.write(lu.vendor.slice(0, 8), 0, 'ascii');
  t10.write(lu.wwn, 8, 'ascii');
  parts.push(designator(2, false, 0, 1, t10));
  const rel = Buffer.alloc(4);
  rel.writeUInt16BE(c.nexus.relativeTargetPortId & 0xffff, 2);
  parts.push(designator(1, true, 1, 4, rel, ISCSI_PROTOCOL));
  if (c.mapping) {
    const tpg = Buffer.alloc(4);
    tpg.writeUInt16BE(lu.alua.groupOf(c.mapping).id & 0xffff, 2);
    parts.push(designator(1, true, 1, 5, tpg, ISCSI_PROTOCOL));
  }
  // SCSI name string: UTF-8, null-terminated, padded to a multiple of 4.
  const name = Buffer.from(c.nexus.targetPortName, 'utf8');
  const padded = Buffer.alloc((name.length + 4) & ~3);
  name.copy(padded);
  parts.push(designator(3, true, 1, 8, padded, ISCSI_PROTOCOL));
  return page(0x83, Buffer.concat(parts));
}

function extendedInquiry(lu: LogicalUnit): Buffer {
  const body = Buffer.alloc(60);
  body[1] = 0x07; // HEADSUP, ORDSUP, SIMPSUP
  body[2] = lu.backstore.writeBack ? 0x01 : 0x00; // V_SUP: volatile cache present
  body[3] = 0x01; // LUICLR
  return page(0x86, body);
}

function blockLimits(lu: LogicalUnit): Buffer {
  const l = lu.limits;
  const b = Buffer.alloc(60);
  b[1] = Math.min(l.maxCompareAndWriteBlocks, 255);
  b.writeUInt16BE(1, 2); // optimal transfer length granularity
  b.writeUInt32BE(l.maxTransferBlocks, 4);
  b.writeUInt32BE(Math.min(l.optimalTransferBlocks, l.maxTransferBlocks), 8);
  b.writeUInt32BE(l.maxTransferBlocks, 12); // maximum prefetch length
  if (l.unmap) {
    b.writeUInt32BE(l.maxUnmapLbaCount, 16);
    b.writeUInt32BE(l.maxUnmapDescriptors, 20);
  }
  b.writeUInt32BE(l.unmapGranularity, 24);
  if (l.unmapGranularityAlignment) b.writeUInt32BE((0x80000000 | l.unmapGranularityAlignment) >>> 0, 28);
  writeU64(b, 32, l.maxWriteSameBlocks);
  // WRITE ATOMIC(16): up to the transfer limit, any alignment, no boundaries.
  b.writeUInt32BE(Math.min(l.maxTransferBlocks, 0xffff), 40);
  b.writeUInt32BE(1, 44);
  b.writeUInt32BE(1, 48);
  return page(0xb0, b);
}

function blockCharacteristics(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(60);
  b.writeUInt16BE(lu.limits.nonRotational ? 1 : 0, 0);
  return page(0xb1, b);
}

function provisioning(lu: LogicalUnit): Buffer {
  const b = Buffer.alloc(4);
  const l = lu.limits;
  b[1] = (l.unmap ? 0x80 : 0) | (l.writeSameUnmap ? 0x60 : 0) | (l.unmap || l.writeSameUnmap ? 0x04 : 0); // LBPU, LBPWS, LBPWS10, LBPRZ=1
  b[2] = lu.backstore.thinProvisioned && (l.unmap || l.writeSameUnmap) ? 0x02 : 0x00; // thin / full
  return page(0xb2, b);
}

export function vpdPage(c: CommandContext, code: number): Buffer {
  const lu = c.lu;
  switch (code) {
    case 0x00:
      return page(0x00, Buffer.from(lu.limits.threePc ? SUPPORTED : SUPPORTED.filter((p) => p !== 0x8f)));
    case 0x80:
      return page(0x80, Buffer.from(lu.wwn, 'ascii'));
    case 0x83:
      return deviceIdentification(c);
    case 0x86:
      return extendedInquiry(lu);
    case 0x8f:
      if (!lu.limits.threePc) throw new SenseError('INVALID_CDB_FIELD', cdbField(2));
      return thirdPartyCopyPage();
    case 0xb0:
      return blockLimits(lu);
    case 0xb1:
      return blockCharacteristics(lu);
    case 0xb2:
      return provisioning(lu);
    default:
      throw new SenseError('INVALID_CDB_FIELD', cdbField(2));
  }
}
