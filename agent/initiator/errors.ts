// RFC 7143 §11.13.5 login status and SPC-4 §4.5 sense data, decoded for the initiator's error messages.
import { LoginStatus } from '../iscsi/pdu/constants.js';
import { Reason, SenseKey } from '../scsi/sense.js';

export type InitiatorErrorCode =
  | 'CONNECT_FAILED' // TCP connect refused / unreachable / timed out
  | 'LOGIN_REFUSED' // the target answered the login with a non-zero status class
  | 'AUTH_FAILED' // the target failed mutual CHAP (it does not know the secret)
  | 'PROTOCOL' // the target sent something this initiator cannot follow
  | 'CONNECTION_LOST' // the connection closed or failed while commands were outstanding
  | 'TIMEOUT' // a command got no answer in time
  | 'CHECK_CONDITION' // the SCSI command ended with CHECK CONDITION (sense decoded)
  | 'SCSI_STATUS' // another non-GOOD SCSI status (BUSY, RESERVATION CONFLICT, …)
  | 'CLOSED'; // the session was logged out or closed by us

export interface Sense {
  key: number;
  asc: number;
  ascq: number;
  /** The Reason name of agent/scsi/sense.ts when the triple is one of ours, else a hex triple. */
  name: string;
}

export class InitiatorError extends Error {
  constructor(readonly code: InitiatorErrorCode, message: string, readonly detail: { statusClass?: number; statusDetail?: number; sense?: Sense; status?: number } = {}) {
    super(message);
    this.name = 'InitiatorError';
  }

  /** Worth trying again later (the source may come back): network trouble, not a refusal. */
  get transient(): boolean {
    if (this.code === 'CONNECT_FAILED' || this.code === 'CONNECTION_LOST' || this.code === 'TIMEOUT') return true;
    if (this.code === 'LOGIN_REFUSED') return this.detail.statusClass === 3 || this.detail.statusClass === 1;
    if (this.code === 'CHECK_CONDITION') return this.detail.sense?.key === SenseKey.NOT_READY || this.detail.sense?.key === SenseKey.UNIT_ATTENTION || this.detail.sense?.key === SenseKey.ABORTED_COMMAND;
    return this.code === 'SCSI_STATUS' && (this.detail.status === 0x08 || this.detail.status === 0x28); // BUSY, TASK SET FULL
  }
}

const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(LoginStatus).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, ' ')]));
const CLASS_NAMES: Record<number, string> = { 1: 'redirection', 2: 'initiator error', 3: 'target error' };

/** "initiator error 0x0201 (authentication failure)". */
export function describeLoginStatus(statusClass: number, statusDetail: number): string {
  const code = (statusClass << 8) | statusDetail;
  const hex = `0x${code.toString(16).padStart(4, '0')}`;
  return `${CLASS_NAMES[statusClass] ?? `status class ${statusClass}`} ${hex} (${STATUS_NAMES[code] ?? 'unknown detail'})`;
}

const REASONS = new Map<string, string>(Object.entries(Reason).map(([name, [key, code]]) => [`${key}/${code}`, name]));
const KEY_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SenseKey).map(([k, v]) => [v, k]));

/** Decodes fixed (70h/71h) or descriptor (72h/73h) sense data (SPC-4 §4.5.2, §4.5.3). */
export function decodeSense(b: Buffer): Sense | undefined {
  if (b.length < 2) return undefined;
  const code = b[0]! & 0x7f;
  let key: number;
  let asc = 0;
  let ascq = 0;
  if (code === 0x70 || code === 0x71) {
    if (b.length < 3) return undefined;
    key = b[2]! & 0x0f;
    if (b.length >= 14) { asc = b[12]!; ascq = b[13]!; }
  } else if (code === 0x72 || code === 0x73) {
    if (b.length < 4) return undefined;
    key = b[1]! & 0x0f;
    asc = b[2]!;
    ascq = b[3]!;
  } else {
    return undefined;
  }
  const triple = (asc << 8) | ascq;
  const name = REASONS.get(`${key}/${triple}`) ?? `${KEY_NAMES[key] ?? `key 0x${key.toString(16)}`} ASC/ASCQ 0x${asc.toString(16).padStart(2, '0')}/0x${ascq.toString(16).padStart(2, '0')}`;
  return { key, asc, ascq, name };
}

export function describeSense(s: Sense): string {
  return `${KEY_NAMES[s.key] ?? `sense key 0x${s.key.toString(16)}`} (${s.name}, ASC/ASCQ 0x${s.asc.toString(16).padStart(2, '0')}/0x${s.ascq.toString(16).padStart(2, '0')})`;
}

const SCSI_STATUS: Record<number, string> = { 0x02: 'CHECK CONDITION', 0x04: 'CONDITION MET', 0x08: 'BUSY', 0x18: 'RESERVATION CONFLICT', 0x28: 'TASK SET FULL', 0x30: 'ACA ACTIVE', 0x40: 'TASK ABORTED' };

export function describeScsiStatus(status: number): string {
  return `${SCSI_STATUS[status] ?? 'status'} (0x${status.toString(16).padStart(2, '0')})`;
}
