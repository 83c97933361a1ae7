// The boundary between a fabric (iSCSI) and the SCSI target core (SAM-5 §4.6, §5: I_T nexus, task, status).
// The fabric turns PDUs into ScsiCommands and ScsiResponses back into PDUs; the core never sees a socket.

import type { Backstore } from '../backstores/backstore.js';

/** SAM-5 status codes. */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatus = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/** SAM-5 task attributes (values as in the iSCSI SCSI Command PDU ATTR field). */
export const TaskAttribute = { UNTAGGED: 0, SIMPLE: 1, ORDERED: 2, HEAD_OF_QUEUE: 3, ACA: 4 } as const;
export type TaskAttribute = (typeof TaskAttribute)[keyof typeof TaskAttribute];

/** One I_T nexus: an initiator port talking to a target port. Reservations and unit attentions key on `id`. */
export interface Nexus {
  /** `${initiatorPortName}|${targetPortName}` — stable across reconnects of the same session identity. */
  readonly id: string;
  readonly initiatorName: string; // IQN/EUI/NAA of the initiator node
  readonly isid: string; // 12 hex digits
  readonly initiatorPortName: string; // `${initiatorName},i,0x${isid}` (RFC 7143 §13.1 iSCSI initiator port name)
  readonly targetName: string;
  readonly tpgt: number;
  readonly targetPortName: string; // `${targetName},t,0x${tpgt as 4 hex digits}`
  /** SPC-4 relative target port identifier of this path (1-based). */
  readonly relativeTargetPortId: number;
}

/** A LUN as one nexus sees it (ACL mapped LUN → TPG LUN → logical unit). */
export interface LunMapping {
  readonly lun: number; // the LUN number the initiator uses
  readonly lu: LogicalUnitHandle;
  readonly writeProtect: boolean;
  /** ALUA target port group this path belongs to for this LU (LIO's alua_tg_pt_gp_name). */
  readonly aluaGroup: string;
}

/** Live view of the LUNs visible to one nexus; reflects ACL changes without re-login. */
export interface LunView {
  get(lun: number): LunMapping | undefined;
  list(): readonly LunMapping[];
}

/** Opaque to the fabric; the core's LogicalUnit implements it. */
export interface LogicalUnitHandle {
  readonly name: string;
}

export interface ScsiCommand {
  readonly nexus: Nexus;
  readonly luns: LunView;
  readonly lun: number;
  readonly cdb: Buffer; // 16 bytes or more (extended CDB from AHS already appended)
  readonly tag: number; // initiator task tag
  readonly attr: TaskAttribute;
  /** Expected Data Transfer Length from the PDU, per direction. */
  readonly expectedInLength: number;
  readonly expectedOutLength: number;
  /** Data-Out already gathered by the fabric (immediate + unsolicited + solicited), as received views. */
  readonly dataOut: readonly Buffer[];
  /**
   * Called once the command's handler has finished with everything it started — including a backstore
   * write still running when an abort answered the command early. From then on nothing reads dataOut.
   */
  readonly settled?: () => void;
}

export interface ScsiResponse {
  status: ScsiStatus;
  /** Fixed-format sense data (SPC-4 §4.5.3) when status is CHECK CONDITION. */
  sense?: Buffer;
  /**
   * Data-In as the command produced it. The fabric sends min(data.length, expectedInLength) and
   * reports the difference as residual overflow/underflow.
   */
  data?: Buffer;
  /**
   * Bytes of Data-Out the CDB called for. When it differs from expectedOutLength the fabric reports
   * the residual (underflow if fewer were needed, overflow if more).
   */
  dataOutLength?: number;
  /** Set when the task was aborted by task management: the fabric sends no response for it. */
  aborted?: boolean;
}

/** SAM-5 task management functions, as coded in the iSCSI Task Management Function Request. */
export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;
export type TmfFunction = (typeof TmfFunction)[keyof typeof TmfFunction];

/** Task management function responses (RFC 7143 §11.6.1). */
export const TmfResponse = {
  COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  REASSIGN_NOT_SUPPORTED: 4,
  NOT_SUPPORTED: 5,
  AUTHORIZATION_FAILED: 6,
  REJECTED: 255,
} as const;
export type TmfResponse = (typeof TmfResponse)[keyof typeof TmfResponse];

export interface TmfRequest {
  readonly nexus: Nexus;
  readonly luns: LunView;
  readonly fn: TmfFunction;
  readonly lun: number;
  /** ABORT TASK: the task tag to abort. */
  readonly referencedTag?: number;
}

/**
 * The SCSI target core as a fabric uses it. One instance serves every target and portal;
 * the nexus and LUN view in each call say whose command it is.
 */
export interface TargetCore {
  /** Runs one command. Never rejects: every failure becomes a status (and sense). */
  execute(cmd: ScsiCommand): Promise<ScsiResponse>;
  /**
   * Bytes of Data-Out the CDB transfers, when the core can tell before execution (SBC writes: blocks ×
   * block size); undefined when it cannot. The fabric solicits no more than this, whatever the initiator's
   * Expected Data Transfer Length declares, and reports the difference as residual.
   */
  dataOutLength?(cmd: Pick<ScsiCommand, 'luns' | 'lun' | 'cdb'>): number | undefined;
  /** Runs a task management function; aborted tasks resolve their execute() with {aborted:true}. */
  taskManagement(req: TmfRequest): Promise<TmfResponse>;
  /** A nexus appeared (login). Sets the power-on/reset unit attention for it. */
  nexusCreated(nexus: Nexus, luns: LunView): void;
  /** A nexus is gone (session closed): drop its tasks; PR registrations stay (SPC-4 §5.12). */
  nexusLost(nexus: Nexus): void;
}

/** What the configuration reconciler needs to make a logical unit. */
export interface LogicalUnitOptions {
  /** Backstore path as the config names it, e.g. "/backstores/fileio/file1". */
  readonly name: string;
  /** The storage object's wwn (a UUID in rtslib); VPD 0x80 serial and 0x83 NAA designator derive from it. */
  readonly wwn: string;
  readonly backstore: Backstore;
  /** storage_objects[].attributes from saveconfig.json (block_size, emulate_*, max_unmap_*, …). */
  readonly attributes: Readonly<Record<string, number | string | boolean>>;
  /** LIO's alua_tpgs for this storage object; empty means one default group, active/optimized. */
  readonly aluaGroups: readonly AluaGroupConfig[];
  /** Directory for state that must survive restarts (APTPL reservations). */
  readonly stateDir: string;
  readonly vendor?: string; // INQUIRY vendor, default "OUTPOST"
  readonly product?: string; // INQUIRY product, default from plugin
}

/** LIO alua_tpgs entry (subset the core uses; the config layer keeps the rest). */
export interface AluaGroupConfig {
  readonly name: string;
  readonly id: number; // tg_pt_gp_id
  /** 0 active/optimized, 1 active/non-optimized, 2 standby, 3 unavailable, 0xe offline, 0xf transitioning. */
  readonly accessState: number;
  /** 1 implicit, 2 explicit, 3 both (alua_access_type). */
  readonly accessType: number;
  readonly preferred: boolean;
}
