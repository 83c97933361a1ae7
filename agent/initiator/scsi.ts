// SBC-4 §5.16/§5.20 READ CAPACITY (16)/(10), §5.11 READ (16), SPC-4 §6.47 TEST UNIT READY, §6.6 INQUIRY (VPD 80h):
// the CDBs the importer sends and the parsing of what comes back, over an InitiatorSession.
import { SenseKey } from '../scsi/sense.js';
import { InitiatorError } from './errors.js';
import type { InitiatorSession } from './session.js';

export interface Capacity {
  blocks: number;
  blockSize: number;
  bytes: number;
}

/** Retries a command the target answers with UNIT ATTENTION (reported once per nexus after a reset or login). */
async function withUa<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= 4 || !(e instanceof InitiatorError) || e.code !== 'CHECK_CONDITION' || e.detail.sense?.key !== SenseKey.UNIT_ATTENTION) throw e;
    }
  }
}

export async function testUnitReady(s: InitiatorSession, lun: number): Promise<void> {
  await withUa(() => s.command(lun, Buffer.alloc(6), 0));
}

function readCapacity16Cdb(): Buffer {
  const c = Buffer.alloc(16);
  c[0] = 0x9e;
  c[1] = 0x10;
  c.writeUInt32BE(32, 10);
  return c;
}

/** READ CAPACITY (16), falling back to (10) when the target does not know it. */
export async function readCapacity(s: InitiatorSession, lun: number): Promise<Capacity> {
  try {
    const r = await withUa(() => s.command(lun, readCapacity16Cdb(), 32));
    if (r.data.length < 12) throw new InitiatorError('PROTOCOL', `READ CAPACITY (16) returned ${r.data.length} bytes`);
    const last = Number(r.data.readBigUInt64BE(0));
    const blockSize = r.data.readUInt32BE(8);
    return { blocks: last + 1, blockSize, bytes: (last + 1) * blockSize };
  } catch (e) {
    if (!(e instanceof InitiatorError) || e.code !== 'CHECK_CONDITION' || e.detail.sense?.key !== SenseKey.ILLEGAL_REQUEST) throw e;
  }
  const c = Buffer.alloc(10);
  c[0] = 0x25;
  const r = await withUa(() => s.command(lun, c, 8));
  if (r.data.length < 8) throw new InitiatorError('PROTOCOL', `READ CAPACITY (10) returned ${r.data.length} bytes`);
  const last = r.data.readUInt32BE(0);
  const blockSize = r.data.readUInt32BE(4);
  return { blocks: last + 1, blockSize, bytes: (last + 1) * blockSize };
}

/** READ (16) of `blocks` blocks at `lba`; the buffer is the caller's (`into`, when given: the bytes land there). */
export async function read16(s: InitiatorSession, lun: number, lba: number, blocks: number, blockSize: number, into?: Buffer): Promise<Buffer> {
  const c = Buffer.alloc(16);
  c[0] = 0x88;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  const want = blocks * blockSize;
  const r = await withUa(() => s.command(lun, c, want, into));
  if (r.data.length !== want) throw new InitiatorError('PROTOCOL', `READ (16) of ${want} bytes at LBA ${lba} returned ${r.data.length}`);
  return r.data;
}

/** INQUIRY VPD page 80h: the unit serial number (Outpost reports the storage object's wwn there). */
export async function unitSerial(s: InitiatorSession, lun: number): Promise<string | undefined> {
  const c = Buffer.alloc(6);
  c[0] = 0x12;
  c[1] = 0x01;
  c[2] = 0x80;
  c.writeUInt16BE(255, 3);
  try {
    const r = await withUa(() => s.command(lun, c, 255));
    if (r.data.length < 4 || r.data[1] !== 0x80) return undefined;
    return r.data.toString('ascii', 4, 4 + Math.min(r.data.readUInt16BE(2), r.data.length - 4)).replace(/[\0 ]+$/, '').trim();
  } catch (e) {
    if (e instanceof InitiatorError && e.code === 'CHECK_CONDITION') return undefined;
    throw e;
  }
}
