// SPC-4 §6.35 / SBC-4: the one opcode table that drives dispatch, CDB usage checks and REPORT SUPPORTED OPERATION CODES.
import type { LunMapping, Nexus, ScsiCommand, ScsiStatus } from './port.js';
import type { LogicalUnit } from './logical-unit.js';
import { SenseError } from './sense.js';

export const DataDirection = { NONE: 'none', IN: 'in', OUT: 'out' } as const;
export type DataDirection = (typeof DataDirection)[keyof typeof DataDirection];

/**
 * SPC-4 §5.13.1 table 63 (and SPC-2 reservations): how a command behaves when another I_T nexus
 * holds the reservation. The reservations hook decides per class; PR code adds behaviour, not classes.
 */
export const ReservationClass = {
  /** Never conflicts (INQUIRY, REPORT LUNS, REQUEST SENSE, RTPG…). */
  ALLOWED: 'allowed',
  /** Reads medium: conflicts under exclusive-access types only. */
  READ: 'read',
  /** Modifies medium: conflicts under write-exclusive and exclusive-access types. */
  WRITE: 'write',
  /** Conflicts whenever another nexus holds any reservation (MODE SELECT, START STOP UNIT…). */
  EXCLUSIVE: 'exclusive',
  /** Reservation management itself (PERSISTENT RESERVE IN/OUT, RESERVE/RELEASE): the handler decides. */
  RESERVATION: 'reservation',
} as const;
export type ReservationClass = (typeof ReservationClass)[keyof typeof ReservationClass];

/**
 * SPC-4 §5.15.2.4: the weakest ALUA access state in which the command is still allowed.
 * ACTIVE: only active/optimized and active/non-optimized; STANDBY: also standby;
 * UNAVAILABLE: also unavailable/offline; ANY: also transitioning.
 */
export const AluaClass = { ACTIVE: 0, STANDBY: 1, UNAVAILABLE: 2, ANY: 3 } as const;
export type AluaClass = (typeof AluaClass)[keyof typeof AluaClass];

export interface CommandContext {
  readonly cmd: ScsiCommand;
  readonly cdb: Buffer;
  readonly nexus: Nexus;
  /** Undefined only for entries with `noLun` when the LUN is not mapped. */
  readonly mapping: LunMapping | undefined;
  readonly lu: LogicalUnit;
  readonly entry: OpcodeEntry;
  /** The table this command was dispatched from (REPORT SUPPORTED OPERATION CODES reads it). */
  readonly table: OpcodeTable;
}

export interface CommandResult {
  status?: ScsiStatus;
  data?: Buffer;
  dataOutLength?: number;
}

export type Handler = (ctx: CommandContext) => Promise<CommandResult> | CommandResult;
export type NoLunHandler = (cmd: ScsiCommand, entry: OpcodeEntry) => Promise<CommandResult> | CommandResult;

export interface OpcodeEntry {
  readonly opcode: number;
  /** Service action (byte 1 bits 4-0) for opcodes that have them. */
  readonly sa?: number;
  readonly name: string;
  readonly cdbLength: number;
  /** CDB usage data (SPC-4 §6.35.3): bit set = field used; byte 0 is the opcode. Bits outside it are reserved. */
  readonly usage: readonly number[];
  readonly dir: DataDirection;
  readonly reservation: ReservationClass;
  readonly alua: AluaClass;
  /** Unit attentions are not reported (SPC-4 §5.14: INQUIRY, REPORT LUNS, REQUEST SENSE). */
  readonly skipUa?: boolean;
  /** Runs when the LUN is not mapped (INQUIRY with PQ=3, REPORT LUNS, REQUEST SENSE). */
  readonly noLun?: NoLunHandler;
  /** Nominal/recommended timeouts in seconds for RCTD (SPC-4 §6.35.4). */
  readonly timeout?: readonly [nominal: number, recommended: number];
  /** Logical blocks of Data-Out the CDB transfers (known before execution; see TargetCore.dataOutLength). */
  readonly dataOutBlocks?: (cdb: Buffer) => number;
  readonly handler: Handler;
}

/** Parses usage masks written as hex bytes ("28 fe ff ff ff ff 3f ff ff 00"). */
export function usage(hex: string): number[] {
  return hex.trim().split(/\s+/).map((h) => parseInt(h, 16));
}

export class OpcodeTable {
  private readonly plain = new Map<number, OpcodeEntry>();
  private readonly withSa = new Map<number, Map<number, OpcodeEntry>>();
  private readonly all: OpcodeEntry[] = [];

  /** Adds entries; a duplicate opcode/service action is a programming error. */
  register(...entries: OpcodeEntry[]): void {
    for (const e of entries) {
      if (e.usage.length !== e.cdbLength || e.usage[0] !== e.opcode) throw new Error(`opcode table: bad usage mask for ${e.name}`);
      if (e.sa === undefined) {
        if (this.plain.has(e.opcode) || this.withSa.has(e.opcode)) throw new Error(`opcode table: duplicate ${e.name}`);
        this.plain.set(e.opcode, e);
      } else {
        if (this.plain.has(e.opcode)) throw new Error(`opcode table: ${e.name} collides with a plain opcode`);
        let m = this.withSa.get(e.opcode);
        if (!m) this.withSa.set(e.opcode, (m = new Map()));
        if (m.has(e.sa)) throw new Error(`opcode table: duplicate ${e.name}`);
        m.set(e.sa, e);
      }
      this.all.push(e);
    }
    this.all.sort((a, b) => a.opcode - b.opcode || (a.sa ?? 0) - (b.sa ?? 0));
  }

  hasServiceActions(opcode: number): boolean {
    return this.withSa.has(opcode);
  }

  /** Looks a CDB up; throws INVALID OPCODE, or INVALID FIELD IN CDB for an unknown service action. */
  lookup(cdb: Buffer): OpcodeEntry {
    const op = cdb[0];
    const e = this.plain.get(op);
    if (e) return e;
    const m = this.withSa.get(op);
    if (!m) throw new SenseError('INVALID_OPCODE');
    const sa = m.get(cdb[1] & 0x1f);
    if (!sa) throw new SenseError('INVALID_CDB_FIELD', { field: { cdb: true, byte: 1, bit: 4 } });
    return sa;
  }

  /** Exact lookup for REPORT SUPPORTED OPERATION CODES (no exceptions). */
  find(opcode: number, sa: number | undefined): OpcodeEntry | undefined {
    if (sa === undefined) return this.plain.get(opcode);
    return this.withSa.get(opcode)?.get(sa);
  }

  entries(): readonly OpcodeEntry[] {
    return this.all;
  }
}

/** Checks reserved CDB bits against the usage mask (SPC-4 §4.3.2: INVALID FIELD IN CDB with the field pointer). */
export function checkCdbUsage(cdb: Buffer, e: OpcodeEntry): void {
  const mask = e.usage;
  for (let i = 1; i < mask.length; i++) {
    const bad = cdb[i] & ~mask[i];
    if (bad !== 0) throw new SenseError('INVALID_CDB_FIELD', { field: { cdb: true, byte: i, bit: 31 - Math.clz32(bad) } });
  }
}
