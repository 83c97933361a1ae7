// RFC 7143 §11.3–§11.19: byte layout of every BHS, one table that drives both parser and serializer.
import { Opcode } from './constants.js';

/** How one header field sits in the 48-byte BHS. */
export type Field =
  | { name: string; kind: 'u8' | 'u16' | 'u32' | 'lun' | 'isid'; off: number }
  | { name: string; kind: 'flag'; off: number; mask: number }
  | { name: string; kind: 'bits'; off: number; mask: number; shift: number }
  | { name: string; kind: 'bytes'; off: number; len: number };

const u8 = (name: string, off: number): Field => ({ name, kind: 'u8', off });
const u16 = (name: string, off: number): Field => ({ name, kind: 'u16', off });
const u32 = (name: string, off: number): Field => ({ name, kind: 'u32', off });
const lun = (off = 8): Field => ({ name: 'lun', kind: 'lun', off });
const flag = (name: string, mask: number, off = 1): Field => ({ name, kind: 'flag', off, mask });
const bits = (name: string, mask: number, shift: number, off = 1): Field => ({ name, kind: 'bits', off, mask, shift });

const STAT = [u32('statSN', 24), u32('expCmdSN', 28), u32('maxCmdSN', 32)];

export const LAYOUTS: Readonly<Record<number, readonly Field[]>> = {
  [Opcode.NOP_OUT]: [lun(), u32('ttt', 20), u32('cmdSN', 24), u32('expStatSN', 28)],
  [Opcode.SCSI_COMMAND]: [
    flag('final', 0x80), flag('read', 0x40), flag('write', 0x20), bits('attr', 0x07, 0),
    lun(), u32('expectedDataTransferLength', 20), u32('cmdSN', 24), u32('expStatSN', 28),
    { name: 'cdb', kind: 'bytes', off: 32, len: 16 },
  ],
  [Opcode.TMF_REQUEST]: [
    bits('fn', 0x7f, 0), lun(), u32('referencedTaskTag', 20), u32('cmdSN', 24), u32('expStatSN', 28),
    u32('refCmdSN', 32), u32('expDataSN', 36),
  ],
  [Opcode.LOGIN_REQUEST]: [
    flag('transit', 0x80), flag('cont', 0x40), bits('csg', 0x0c, 2), bits('nsg', 0x03, 0),
    u8('versionMax', 2), u8('versionMin', 3), { name: 'isid', kind: 'isid', off: 8 }, u16('tsih', 14),
    u16('cid', 20), u32('cmdSN', 24), u32('expStatSN', 28),
  ],
  [Opcode.TEXT_REQUEST]: [flag('final', 0x80), flag('cont', 0x40), lun(), u32('ttt', 20), u32('cmdSN', 24), u32('expStatSN', 28)],
  [Opcode.DATA_OUT]: [flag('final', 0x80), lun(), u32('ttt', 20), u32('expStatSN', 28), u32('dataSN', 36), u32('bufferOffset', 40)],
  [Opcode.LOGOUT_REQUEST]: [bits('reason', 0x7f, 0), u16('cid', 20), u32('cmdSN', 24), u32('expStatSN', 28)],
  [Opcode.SNACK_REQUEST]: [bits('type', 0x0f, 0), lun(), u32('ttt', 20), u32('expStatSN', 28), u32('begRun', 40), u32('runLength', 44)],
  [Opcode.NOP_IN]: [lun(), u32('ttt', 20), ...STAT],
  [Opcode.SCSI_RESPONSE]: [
    flag('bidiOverflow', 0x10), flag('bidiUnderflow', 0x08), flag('overflow', 0x04), flag('underflow', 0x02),
    u8('response', 2), u8('status', 3), u32('snackTag', 20), ...STAT, u32('expDataSN', 36),
    u32('bidiResidualCount', 40), u32('residualCount', 44),
  ],
  [Opcode.TMF_RESPONSE]: [u8('response', 2), ...STAT],
  [Opcode.LOGIN_RESPONSE]: [
    flag('transit', 0x80), flag('cont', 0x40), bits('csg', 0x0c, 2), bits('nsg', 0x03, 0),
    u8('versionMax', 2), u8('versionActive', 3), { name: 'isid', kind: 'isid', off: 8 }, u16('tsih', 14),
    ...STAT, u8('statusClass', 36), u8('statusDetail', 37),
  ],
  [Opcode.TEXT_RESPONSE]: [flag('final', 0x80), flag('cont', 0x40), lun(), u32('ttt', 20), ...STAT],
  [Opcode.DATA_IN]: [
    flag('final', 0x80), flag('ack', 0x40), flag('overflow', 0x04), flag('underflow', 0x02), flag('hasStatus', 0x01),
    u8('status', 3), lun(), u32('ttt', 20), ...STAT, u32('dataSN', 36), u32('bufferOffset', 40), u32('residualCount', 44),
  ],
  [Opcode.LOGOUT_RESPONSE]: [u8('response', 2), ...STAT, u16('time2Wait', 40), u16('time2Retain', 42)],
  [Opcode.R2T]: [lun(), u32('ttt', 20), ...STAT, u32('r2tSN', 36), u32('bufferOffset', 40), u32('desiredDataTransferLength', 44)],
  [Opcode.ASYNC_MESSAGE]: [
    lun(), ...STAT, u8('asyncEvent', 36), u8('asyncVCode', 37), u16('parameter1', 38), u16('parameter2', 40), u16('parameter3', 42),
  ],
  [Opcode.REJECT]: [u8('reason', 2), ...STAT, u32('dataSN', 36)],
};

/** Bits of byte 1 that are always 1 on the wire for this opcode (the F bit where it is fixed). */
export const FIXED_BYTE1: Readonly<Record<number, number>> = {
  [Opcode.NOP_OUT]: 0x80, [Opcode.TMF_REQUEST]: 0x80, [Opcode.LOGOUT_REQUEST]: 0x80, [Opcode.SNACK_REQUEST]: 0x80,
  [Opcode.NOP_IN]: 0x80, [Opcode.SCSI_RESPONSE]: 0x80, [Opcode.TMF_RESPONSE]: 0x80, [Opcode.LOGOUT_RESPONSE]: 0x80,
  [Opcode.R2T]: 0x80, [Opcode.ASYNC_MESSAGE]: 0x80, [Opcode.REJECT]: 0x80,
};
