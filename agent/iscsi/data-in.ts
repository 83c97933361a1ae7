// RFC 7143 §11.7 (Data-In), §11.4 (SCSI Response), §4.2.5: splitting read data to the initiator's
// MaxRecvDataSegmentLength, DataSN, phase-collapsed status (S bit) and residual counts (O/U bits).
import { Opcode, RESERVED_TAG } from './pdu/constants.js';
import type { DataIn, Header, ScsiResponseHeader } from './pdu/types.js';
import { ScsiStatus, type ScsiResponse } from '../scsi/port.js';
import type { SessionParams } from './text/negotiate.js';

export interface OutPdu {
  h: Header;
  data: Buffer[];
}

export interface ResponseTask {
  itt: number;
  lun: number;
  expectedInLength: number;
  expectedOutLength: number;
}

interface Residual {
  overflow: boolean;
  underflow: boolean;
  count: number;
}

/** The common case, shared: one object fewer per command. */
const NO_RESIDUAL: Residual = Object.freeze({ overflow: false, underflow: false, count: 0 });

function residual(expected: number, actual: number): Residual {
  if (actual < expected) return { overflow: false, underflow: true, count: expected - actual };
  if (actual > expected) return { overflow: true, underflow: false, count: actual - expected };
  return NO_RESIDUAL;
}

/**
 * Turns a core response into the PDUs that carry it. StatSN/ExpCmdSN/MaxCmdSN are filled in by the
 * sender (`stamp`), which numbers the one status-bearing PDU.
 */
export function responsePdus(task: ResponseTask, resp: ScsiResponse, params: SessionParams): OutPdu[] {
  const out: OutPdu[] = [];
  const data = resp.data;
  const produced = data?.length ?? 0;
  const sendLen = Math.min(produced, task.expectedInLength);
  // Residual for the direction that moved data; reads take precedence (bidirectional uses the read side here).
  let res: Residual;
  if (task.expectedInLength > 0 || (produced > 0 && task.expectedOutLength === 0)) res = residual(task.expectedInLength, produced);
  else if (resp.dataOutLength !== undefined) res = residual(task.expectedOutLength, resp.dataOutLength);
  else res = NO_RESIDUAL;

  const collapse = !resp.sense && sendLen > 0 && resp.status !== ScsiStatus.CHECK_CONDITION;
  if (sendLen > 0 && data) {
    const seg = Math.max(512, params.initiatorMaxRecvDataSegmentLength);
    const burst = Math.max(seg, params.maxBurstLength);
    let dataSN = 0;
    for (let off = 0; off < sendLen; off += Math.min(seg, sendLen - off)) {
      const len = Math.min(seg, sendLen - off);
      const last = off + len >= sendLen;
      // F marks the end of each Data-In sequence (at most MaxBurstLength) and of the transfer.
      const seqEnd = last || Math.floor((off + len) / burst) !== Math.floor(off / burst) || (off + len) % burst === 0;
      const withStatus = last && collapse;
      const h: DataIn = {
        opcode: Opcode.DATA_IN, immediate: false, itt: task.itt,
        final: seqEnd, ack: false, hasStatus: withStatus, status: withStatus ? resp.status : 0,
        overflow: withStatus && res.overflow, underflow: withStatus && res.underflow,
        lun: task.lun, ttt: RESERVED_TAG, statSN: 0, expCmdSN: 0, maxCmdSN: 0,
        dataSN: dataSN++, bufferOffset: off, residualCount: withStatus ? res.count : 0,
      };
      out.push({ h, data: [len === data.length ? data : data.subarray(off, off + len)] });
    }
    if (collapse) return out;
  }
  let senseData: Buffer[] = [];
  if (resp.sense && resp.sense.length) {
    const prefix = Buffer.allocUnsafe(2);
    prefix.writeUInt16BE(resp.sense.length, 0);
    senseData = [prefix, resp.sense];
  }
  const rsp: ScsiResponseHeader = {
    opcode: Opcode.SCSI_RESPONSE, immediate: false, itt: task.itt,
    bidiOverflow: false, bidiUnderflow: false, overflow: res.overflow, underflow: res.underflow,
    response: 0, status: resp.status, snackTag: 0, statSN: 0, expCmdSN: 0, maxCmdSN: 0,
    expDataSN: out.length, bidiResidualCount: 0, residualCount: res.count,
  };
  out.push({ h: rsp, data: senseData });
  return out;
}
