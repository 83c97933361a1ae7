// SPC-4 §4.5 sense data: reasons → sense key/ASC/ASCQ (one table), fixed-format builder (§4.5.3).

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  MISCOMPARE: 0xe,
} as const;
export type SenseKey = (typeof SenseKey)[keyof typeof SenseKey];

/** Every reason a command can fail or a unit attention can be reported: [sense key, ASC<<8 | ASCQ]. */
export const Reason = {
  NO_SENSE: [SenseKey.NO_SENSE, 0x0000],
  // ILLEGAL REQUEST
  INVALID_OPCODE: [SenseKey.ILLEGAL_REQUEST, 0x2000],
  LBA_OUT_OF_RANGE: [SenseKey.ILLEGAL_REQUEST, 0x2100],
  INVALID_CDB_FIELD: [SenseKey.ILLEGAL_REQUEST, 0x2400],
  LUN_NOT_SUPPORTED: [SenseKey.ILLEGAL_REQUEST, 0x2500],
  INVALID_PARAMETER_LIST_FIELD: [SenseKey.ILLEGAL_REQUEST, 0x2600],
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: [SenseKey.ILLEGAL_REQUEST, 0x2604],
  PARAMETER_LIST_LENGTH_ERROR: [SenseKey.ILLEGAL_REQUEST, 0x1a00],
  SAVING_PARAMETERS_NOT_SUPPORTED: [SenseKey.ILLEGAL_REQUEST, 0x3900],
  INSUFFICIENT_REGISTRATION_RESOURCES: [SenseKey.ILLEGAL_REQUEST, 0x5504],
  MEDIUM_REMOVAL_PREVENTED: [SenseKey.ILLEGAL_REQUEST, 0x5302],
  OPERATION_IN_PROGRESS: [SenseKey.ILLEGAL_REQUEST, 0x0016],
  TOO_MANY_TARGET_DESCRIPTORS: [SenseKey.ILLEGAL_REQUEST, 0x2606],
  UNSUPPORTED_TARGET_DESCRIPTOR_TYPE: [SenseKey.ILLEGAL_REQUEST, 0x2607],
  TOO_MANY_SEGMENT_DESCRIPTORS: [SenseKey.ILLEGAL_REQUEST, 0x2608],
  UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE: [SenseKey.ILLEGAL_REQUEST, 0x2609],
  // COPY ABORTED (EXTENDED COPY, SPC-4 §6.4.3)
  COPY_ABORTED: [SenseKey.COPY_ABORTED, 0x0000],
  COPY_TARGET_DEVICE_NOT_REACHABLE: [SenseKey.COPY_ABORTED, 0x0d02],
  // DATA PROTECT
  WRITE_PROTECTED: [SenseKey.DATA_PROTECT, 0x2700],
  SPACE_ALLOCATION_FAILED: [SenseKey.DATA_PROTECT, 0x2707],
  // MISCOMPARE
  MISCOMPARE: [SenseKey.MISCOMPARE, 0x1d00],
  // MEDIUM ERROR
  MEDIUM_ERROR: [SenseKey.MEDIUM_ERROR, 0x1100], // unrecovered read error
  WRITE_ERROR: [SenseKey.MEDIUM_ERROR, 0x0c00],
  // HARDWARE ERROR / ABORTED COMMAND
  INTERNAL_TARGET_FAILURE: [SenseKey.HARDWARE_ERROR, 0x4400],
  OVERLAPPED_COMMANDS: [SenseKey.ABORTED_COMMAND, 0x4e00],
  // NOT READY
  NOT_READY_CAUSE_NOT_REPORTABLE: [SenseKey.NOT_READY, 0x0400],
  NOT_READY_BECOMING_READY: [SenseKey.NOT_READY, 0x0401],
  NOT_READY_INITIALIZING_COMMAND_REQUIRED: [SenseKey.NOT_READY, 0x0402],
  NOT_READY_ALUA_TRANSITION: [SenseKey.NOT_READY, 0x040a],
  NOT_READY_ALUA_STANDBY: [SenseKey.NOT_READY, 0x040b],
  NOT_READY_ALUA_UNAVAILABLE: [SenseKey.NOT_READY, 0x040c],
  NOT_READY_OFFLINE: [SenseKey.NOT_READY, 0x0412],
  // UNIT ATTENTION
  POWER_ON_RESET: [SenseKey.UNIT_ATTENTION, 0x2900],
  POWER_ON_OCCURRED: [SenseKey.UNIT_ATTENTION, 0x2901],
  BUS_RESET: [SenseKey.UNIT_ATTENTION, 0x2902],
  BUS_DEVICE_RESET: [SenseKey.UNIT_ATTENTION, 0x2903],
  I_T_NEXUS_LOSS: [SenseKey.UNIT_ATTENTION, 0x2907],
  MODE_PARAMETERS_CHANGED: [SenseKey.UNIT_ATTENTION, 0x2a01],
  RESERVATIONS_PREEMPTED: [SenseKey.UNIT_ATTENTION, 0x2a03],
  RESERVATIONS_RELEASED: [SenseKey.UNIT_ATTENTION, 0x2a04],
  REGISTRATIONS_PREEMPTED: [SenseKey.UNIT_ATTENTION, 0x2a05],
  ASYMMETRIC_ACCESS_STATE_CHANGED: [SenseKey.UNIT_ATTENTION, 0x2a06],
  CAPACITY_CHANGED: [SenseKey.UNIT_ATTENTION, 0x2a09],
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: [SenseKey.UNIT_ATTENTION, 0x2f00],
  INQUIRY_DATA_CHANGED: [SenseKey.UNIT_ATTENTION, 0x3f03],
  REPORTED_LUNS_DATA_CHANGED: [SenseKey.UNIT_ATTENTION, 0x3f0e],
} as const;
export type ReasonName = keyof typeof Reason;

/** SPC-4 §4.5.2.4.2 sense-key specific field pointer (SKSV=1). */
export interface FieldPointer {
  /** true: the error is in the CDB (C/D=1); false: in the parameter list. */
  readonly cdb: boolean;
  readonly byte: number;
  /** Bit within the byte (BPV=1) when known. */
  readonly bit?: number;
}

export interface SenseDetail {
  readonly field?: FieldPointer;
  /** INFORMATION field (VALID=1): miscompare offset, failing LBA… */
  readonly info?: number;
}

/** What a handler throws when a command fails with CHECK CONDITION. */
export class SenseError extends Error {
  constructor(
    readonly reason: ReasonName,
    readonly detail: SenseDetail = {},
  ) {
    super(reason);
    this.name = 'SenseError';
  }
}

export function cdbField(byte: number, bit?: number): SenseDetail {
  return { field: { cdb: true, byte, bit } };
}
export function paramField(byte: number, bit?: number): SenseDetail {
  return { field: { cdb: false, byte, bit } };
}

export const FIXED_SENSE_LENGTH = 18;

/** Builds fixed-format sense (response code 70h, current error). */
export function buildSense(reason: ReasonName, detail: SenseDetail = {}): Buffer {
  const [key, ascq] = Reason[reason];
  const b = Buffer.alloc(FIXED_SENSE_LENGTH);
  b[0] = 0x70;
  b[2] = key;
  if (detail.info !== undefined) {
    b[0] |= 0x80; // VALID
    b.writeUInt32BE(detail.info >>> 0, 3);
  }
  b[7] = FIXED_SENSE_LENGTH - 8;
  b[12] = ascq >> 8;
  b[13] = ascq & 0xff;
  const f = detail.field;
  if (f) {
    b[15] = 0x80 | (f.cdb ? 0x40 : 0) | (f.bit !== undefined ? 0x08 | (f.bit & 7) : 0);
    b.writeUInt16BE(f.byte, 16);
  }
  return b;
}

/** Sense key of a reason (used to decide whether a queued UA is one). */
export function senseKeyOf(reason: ReasonName): SenseKey {
  return Reason[reason][0];
}
