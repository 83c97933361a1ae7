// RFC 7143 §13 (and §12 security keys): every key, its kind, range, default, scope and result function.

export type KeyKind =
  | 'list' // comma list, responder picks the first it supports
  | 'min' // numeric, result = min
  | 'max' // numeric, result = max
  | 'and' // boolean, result = AND
  | 'or' // boolean, result = OR
  | 'declarative' // each side states its own value
  | 'security'; // handled by the authentication exchange

export interface KeyDef {
  readonly name: string;
  readonly kind: KeyKind;
  readonly min?: number;
  readonly max?: number;
  readonly def?: string;
  /** LO: negotiated on the leading connection only. */
  readonly leadingOnly?: boolean;
  /** Declared by the target only; an initiator sending it gets Reject. */
  readonly targetOnly?: boolean;
  /** "Irrelevant when SessionType=Discovery". */
  readonly normalOnly?: boolean;
  /** May appear only in the security stage. */
  readonly securityOnly?: boolean;
  /** May appear only in full-feature Text requests (SendTargets). */
  readonly fullFeatureOnly?: boolean;
}

const K = (d: KeyDef): [string, KeyDef] => [d.name, d];
const LEN_MAX = 16777215;

export const KEYS: ReadonlyMap<string, KeyDef> = new Map([
  K({ name: 'AuthMethod', kind: 'security', securityOnly: true }),
  K({ name: 'CHAP_A', kind: 'security', securityOnly: true }),
  K({ name: 'CHAP_I', kind: 'security', securityOnly: true }),
  K({ name: 'CHAP_C', kind: 'security', securityOnly: true }),
  K({ name: 'CHAP_N', kind: 'security', securityOnly: true }),
  K({ name: 'CHAP_R', kind: 'security', securityOnly: true }),
  K({ name: 'HeaderDigest', kind: 'list', def: 'None' }),
  K({ name: 'DataDigest', kind: 'list', def: 'None' }),
  K({ name: 'MaxConnections', kind: 'min', min: 1, max: 65535, def: '1', leadingOnly: true, normalOnly: true }),
  K({ name: 'SendTargets', kind: 'declarative', fullFeatureOnly: true }),
  K({ name: 'TargetName', kind: 'declarative' }),
  K({ name: 'InitiatorName', kind: 'declarative' }),
  K({ name: 'TargetAlias', kind: 'declarative', targetOnly: true }),
  K({ name: 'InitiatorAlias', kind: 'declarative' }),
  K({ name: 'TargetAddress', kind: 'declarative', targetOnly: true }),
  K({ name: 'TargetPortalGroupTag', kind: 'declarative', targetOnly: true }),
  K({ name: 'InitialR2T', kind: 'or', def: 'Yes', leadingOnly: true, normalOnly: true }),
  K({ name: 'ImmediateData', kind: 'and', def: 'Yes', leadingOnly: true, normalOnly: true }),
  K({ name: 'MaxRecvDataSegmentLength', kind: 'declarative', min: 512, max: LEN_MAX, def: '8192' }),
  K({ name: 'MaxBurstLength', kind: 'min', min: 512, max: LEN_MAX, def: '262144', leadingOnly: true, normalOnly: true }),
  K({ name: 'FirstBurstLength', kind: 'min', min: 512, max: LEN_MAX, def: '65536', leadingOnly: true, normalOnly: true }),
  K({ name: 'DefaultTime2Wait', kind: 'max', min: 0, max: 3600, def: '2', leadingOnly: true }),
  K({ name: 'DefaultTime2Retain', kind: 'min', min: 0, max: 3600, def: '20', leadingOnly: true }),
  K({ name: 'MaxOutstandingR2T', kind: 'min', min: 1, max: 65535, def: '1', leadingOnly: true, normalOnly: true }),
  K({ name: 'DataPDUInOrder', kind: 'or', def: 'Yes', leadingOnly: true, normalOnly: true }),
  K({ name: 'DataSequenceInOrder', kind: 'or', def: 'Yes', leadingOnly: true, normalOnly: true }),
  K({ name: 'ErrorRecoveryLevel', kind: 'min', min: 0, max: 2, def: '0', leadingOnly: true }),
  K({ name: 'SessionType', kind: 'declarative', def: 'Normal', leadingOnly: true }),
  K({ name: 'TaskReporting', kind: 'list', def: 'RFC3720', leadingOnly: true }),
  K({ name: 'iSCSIProtocolLevel', kind: 'min', min: 0, max: 31, def: '1', leadingOnly: true }),
  // Obsoleted by RFC 7143 §13 but still sent by open-iscsi; LIO answers them, so do we.
  K({ name: 'IFMarker', kind: 'and', def: 'No' }),
  K({ name: 'OFMarker', kind: 'and', def: 'No' }),
  K({ name: 'IFMarkInt', kind: 'declarative' }),
  K({ name: 'OFMarkInt', kind: 'declarative' }),
]);

/** The values this target offers when the TPG's parameters do not say otherwise (fast-path defaults). */
export const TARGET_DEFAULTS: Readonly<Record<string, string>> = {
  HeaderDigest: 'CRC32C,None',
  DataDigest: 'CRC32C,None',
  MaxConnections: '1',
  InitialR2T: 'No',
  ImmediateData: 'Yes',
  MaxRecvDataSegmentLength: '262144',
  MaxBurstLength: '16776192',
  FirstBurstLength: '262144',
  DefaultTime2Wait: '2',
  DefaultTime2Retain: '20',
  MaxOutstandingR2T: '16',
  DataPDUInOrder: 'Yes',
  DataSequenceInOrder: 'Yes',
  ErrorRecoveryLevel: '0',
  TaskReporting: 'RFC3720',
  iSCSIProtocolLevel: '1',
  IFMarker: 'No',
  OFMarker: 'No',
};

/** Values this implementation can actually do, whatever the configuration asks for. */
export const TARGET_LIMITS: Readonly<Record<string, string>> = {
  ErrorRecoveryLevel: '0', // only ERL 0 (session recovery)
  DataPDUInOrder: 'Yes',
  DataSequenceInOrder: 'Yes',
  IFMarker: 'No',
  OFMarker: 'No',
  TaskReporting: 'RFC3720',
  MaxOutstandingR2T: '64',
};
