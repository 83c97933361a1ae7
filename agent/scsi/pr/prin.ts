// SPC-4 §6.15 PERSISTENT RESERVE IN: READ KEYS, READ RESERVATION, REPORT CAPABILITIES, READ FULL STATUS.
import { trimToAllocation } from '../cdb.js';
import type { CommandContext, CommandResult } from '../opcodes.js';
import { SenseError, cdbField } from '../sense.js';
import { prPolicyOf } from './policy.js';
import { isAllRegistrants, type PrState } from './state.js';

export const PrinAction = { READ_KEYS: 0, READ_RESERVATION: 1, REPORT_CAPABILITIES: 2, READ_FULL_STATUS: 3 } as const;

function putKey(b: Buffer, off: number, key: bigint): void {
  b.writeBigUInt64BE(key, off);
}

function readKeys(st: PrState): Buffer {
  const keys = [...st.registrants.values()];
  const b = Buffer.alloc(8 + keys.length * 8);
  b.writeUInt32BE(st.generation >>> 0, 0);
  b.writeUInt32BE(keys.length * 8, 4);
  keys.forEach((r, i) => putKey(b, 8 + i * 8, r.key));
  return b;
}

function readReservation(st: PrState): Buffer {
  const r = st.reservation;
  const b = Buffer.alloc(r ? 24 : 8);
  b.writeUInt32BE(st.generation >>> 0, 0);
  if (r) {
    b.writeUInt32BE(16, 4);
    putKey(b, 8, st.reservationKey());
    b[21] = r.type; // scope 0 (LU_SCOPE)
  }
  return b;
}

/** REPORT CAPABILITIES (§6.15.4): what PERSISTENT RESERVE OUT below accepts, and nothing more. */
function reportCapabilities(st: PrState): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(8, 0);
  b[2] = 0x10 | 0x01; // CRH (RESERVE/RELEASE conflict with PR), PTPL_C; SIP_C=0, ATP_C=0
  b[3] = 0x80 | (st.aptpl ? 0x01 : 0); // TMV, ALLOW COMMANDS 000b, PTPL_A
  b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  b[5] = 0x01; // EX_AC_AR
  return b;
}

/** iSCSI TransportID, format 01b: "name,i,0x<isid>" NUL-terminated, padded to a multiple of 4 (SPC-4 §7.6.4.6). */
export function iscsiTransportId(initiatorPortName: string): Buffer {
  const name = Buffer.from(initiatorPortName, 'utf8');
  const len = (name.length + 1 + 3) & ~3;
  const b = Buffer.alloc(4 + Math.max(len, 20));
  b[0] = 0x40 | 0x05;
  b.writeUInt16BE(b.length - 4, 2);
  name.copy(b, 4);
  return b;
}

function readFullStatus(st: PrState): Buffer {
  const parts: Buffer[] = [];
  const r = st.reservation;
  for (const reg of st.registrants.values()) {
    const tid = iscsiTransportId(reg.initiatorPortName);
    const d = Buffer.alloc(24 + tid.length);
    putKey(d, 0, reg.key);
    const holder = r !== undefined && (isAllRegistrants(r.type) || r.holder === reg.nexusId);
    if (holder) {
      d[12] = 0x01; // R_HOLDER
      d[13] = r.type;
    }
    d.writeUInt16BE(reg.relativeTargetPortId & 0xffff, 18);
    d.writeUInt32BE(tid.length, 20);
    tid.copy(d, 24);
    parts.push(d);
  }
  const body = Buffer.concat(parts);
  const b = Buffer.alloc(8 + body.length);
  b.writeUInt32BE(st.generation >>> 0, 0);
  b.writeUInt32BE(body.length, 4);
  body.copy(b, 8);
  return b;
}

export function persistentReserveIn(c: CommandContext): CommandResult {
  const policy = prPolicyOf(c.lu);
  if (!policy) throw new SenseError('INVALID_OPCODE');
  const st = policy.state;
  const alloc = c.cdb.readUInt16BE(7);
  let data: Buffer;
  switch (c.cdb[1] & 0x1f) {
    case PrinAction.READ_KEYS:
      data = readKeys(st);
      break;
    case PrinAction.READ_RESERVATION:
      data = readReservation(st);
      break;
    case PrinAction.REPORT_CAPABILITIES:
      data = reportCapabilities(st);
      break;
    case PrinAction.READ_FULL_STATUS:
      data = readFullStatus(st);
      break;
    default:
      throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 4));
  }
  return { data: trimToAllocation(data, alloc) };
}

