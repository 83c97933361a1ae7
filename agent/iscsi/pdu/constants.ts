// RFC 7143 §11: opcodes, header flags, reject reasons, login status classes, logout codes.

export const BHS_LENGTH = 48;
export const RESERVED_TAG = 0xffffffff;

/** Initiator and target opcodes (RFC 7143 §11.2.1.2). */
export const Opcode = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TMF_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TMF_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export const OPCODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(Opcode).map(([k, v]) => [v, k]),
);

/** Reject reasons (RFC 7143 §11.17.1). */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OP_REJECT: 0x0a,
  DEPRECATED: 0x0b,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Login status as (class << 8) | detail (RFC 7143 §11.13.5). */
export const LoginStatus = {
  SUCCESS: 0x0000,
  TARGET_MOVED_TEMPORARILY: 0x0101,
  TARGET_MOVED_PERMANENTLY: 0x0102,
  INITIATOR_ERROR: 0x0200,
  AUTHENTICATION_FAILURE: 0x0201,
  AUTHORIZATION_FAILURE: 0x0202,
  NOT_FOUND: 0x0203,
  TARGET_REMOVED: 0x0204,
  UNSUPPORTED_VERSION: 0x0205,
  TOO_MANY_CONNECTIONS: 0x0206,
  MISSING_PARAMETER: 0x0207,
  CANT_INCLUDE_IN_SESSION: 0x0208,
  SESSION_TYPE_NOT_SUPPORTED: 0x0209,
  SESSION_DOES_NOT_EXIST: 0x020a,
  INVALID_DURING_LOGIN: 0x020b,
  TARGET_ERROR: 0x0300,
  SERVICE_UNAVAILABLE: 0x0301,
  OUT_OF_RESOURCES: 0x0302,
} as const;
export type LoginStatus = (typeof LoginStatus)[keyof typeof LoginStatus];

/** Login stages (CSG/NSG, RFC 7143 §11.12.3). */
export const Stage = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

export const LogoutReason = { CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_FOR_RECOVERY: 2 } as const;
export const LogoutResponse = { SUCCESS: 0, CID_NOT_FOUND: 1, RECOVERY_NOT_SUPPORTED: 2, CLEANUP_FAILED: 3 } as const;

/** Asynchronous event codes (RFC 7143 §11.9.1). */
export const AsyncEvent = { SCSI: 0, LOGOUT_REQUEST: 1, DROP_CONNECTION: 2, DROP_ALL: 3, NEGOTIATE: 4 } as const;

/** AHS types (RFC 7143 §11.2.2). */
export const AhsType = { EXTENDED_CDB: 1, BIDI_READ_LENGTH: 2 } as const;
