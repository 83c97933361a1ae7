// RFC 7143 §11: the fields of each PDU's Basic Header Segment, one interface per opcode.
import type { Opcode } from './constants.js';

interface Base {
  immediate: boolean;
  itt: number; // Initiator Task Tag (bytes 16..19)
}

export interface NopOut extends Base { opcode: typeof Opcode.NOP_OUT; lun: number; ttt: number; cmdSN: number; expStatSN: number }
export interface ScsiCommandHeader extends Base {
  opcode: typeof Opcode.SCSI_COMMAND;
  final: boolean; read: boolean; write: boolean; attr: number;
  lun: number; expectedDataTransferLength: number; cmdSN: number; expStatSN: number; cdb: Buffer;
}
export interface TmfRequest extends Base {
  opcode: typeof Opcode.TMF_REQUEST;
  fn: number; lun: number; referencedTaskTag: number; cmdSN: number; expStatSN: number; refCmdSN: number; expDataSN: number;
}
export interface LoginRequest extends Base {
  opcode: typeof Opcode.LOGIN_REQUEST;
  transit: boolean; cont: boolean; csg: number; nsg: number; versionMax: number; versionMin: number;
  isid: string; tsih: number; cid: number; cmdSN: number; expStatSN: number;
}
export interface TextRequest extends Base {
  opcode: typeof Opcode.TEXT_REQUEST;
  final: boolean; cont: boolean; lun: number; ttt: number; cmdSN: number; expStatSN: number;
}
export interface DataOut extends Base {
  opcode: typeof Opcode.DATA_OUT;
  final: boolean; lun: number; ttt: number; expStatSN: number; dataSN: number; bufferOffset: number;
}
export interface LogoutRequest extends Base {
  opcode: typeof Opcode.LOGOUT_REQUEST;
  reason: number; cid: number; cmdSN: number; expStatSN: number;
}
export interface SnackRequest extends Base {
  opcode: typeof Opcode.SNACK_REQUEST;
  type: number; lun: number; ttt: number; expStatSN: number; begRun: number; runLength: number;
}
export interface NopIn extends Base { opcode: typeof Opcode.NOP_IN; lun: number; ttt: number; statSN: number; expCmdSN: number; maxCmdSN: number }
export interface ScsiResponseHeader extends Base {
  opcode: typeof Opcode.SCSI_RESPONSE;
  bidiOverflow: boolean; bidiUnderflow: boolean; overflow: boolean; underflow: boolean;
  response: number; status: number; snackTag: number; statSN: number; expCmdSN: number; maxCmdSN: number;
  expDataSN: number; bidiResidualCount: number; residualCount: number;
}
export interface TmfResponse extends Base {
  opcode: typeof Opcode.TMF_RESPONSE;
  response: number; statSN: number; expCmdSN: number; maxCmdSN: number;
}
export interface LoginResponse extends Base {
  opcode: typeof Opcode.LOGIN_RESPONSE;
  transit: boolean; cont: boolean; csg: number; nsg: number; versionMax: number; versionActive: number;
  isid: string; tsih: number; statSN: number; expCmdSN: number; maxCmdSN: number; statusClass: number; statusDetail: number;
}
export interface TextResponse extends Base {
  opcode: typeof Opcode.TEXT_RESPONSE;
  final: boolean; cont: boolean; lun: number; ttt: number; statSN: number; expCmdSN: number; maxCmdSN: number;
}
export interface DataIn extends Base {
  opcode: typeof Opcode.DATA_IN;
  final: boolean; ack: boolean; overflow: boolean; underflow: boolean; hasStatus: boolean; status: number;
  lun: number; ttt: number; statSN: number; expCmdSN: number; maxCmdSN: number; dataSN: number; bufferOffset: number; residualCount: number;
}
export interface LogoutResponse extends Base {
  opcode: typeof Opcode.LOGOUT_RESPONSE;
  response: number; statSN: number; expCmdSN: number; maxCmdSN: number; time2Wait: number; time2Retain: number;
}
export interface R2t extends Base {
  opcode: typeof Opcode.R2T;
  lun: number; ttt: number; statSN: number; expCmdSN: number; maxCmdSN: number; r2tSN: number; bufferOffset: number; desiredDataTransferLength: number;
}
export interface AsyncMessage extends Base {
  opcode: typeof Opcode.ASYNC_MESSAGE;
  lun: number; statSN: number; expCmdSN: number; maxCmdSN: number; asyncEvent: number; asyncVCode: number; parameter1: number; parameter2: number; parameter3: number;
}
export interface Reject extends Base {
  opcode: typeof Opcode.REJECT;
  reason: number; statSN: number; expCmdSN: number; maxCmdSN: number; dataSN: number;
}

export type RequestHeader = NopOut | ScsiCommandHeader | TmfRequest | LoginRequest | TextRequest | DataOut | LogoutRequest | SnackRequest;
export type ResponseHeader = NopIn | ScsiResponseHeader | TmfResponse | LoginResponse | TextResponse | DataIn | LogoutResponse | R2t | AsyncMessage | Reject;
export type Header = RequestHeader | ResponseHeader;

/** A whole PDU: header fields, raw AHS bytes (empty when none) and the data segment as views. */
export interface Pdu<H extends Header = Header> {
  header: H;
  ahs: Buffer;
  data: Buffer[];
  dataLength: number;
  /** The 48-byte BHS as received (for Reject, which echoes it). */
  bhs: Buffer;
}
