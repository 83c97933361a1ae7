// SAM-5 §5 / SPC-4 §5.14–5.15: the target core's command pipeline (LUN → UA → ALUA → reservations → CDB → execute).
import { BackstoreError, BackstoreErrorCode } from '../backstores/backstore.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { aluaRefusal } from './alua.js';
import { defaultOpcodeTable } from './commands.js';
import { LogicalUnit } from './logical-unit.js';
import { checkCdbUsage, DataDirection, type CommandContext, type OpcodeEntry, type OpcodeTable } from './opcodes.js';
import {
  ScsiStatus,
  type LunMapping,
  type LunView,
  type Nexus,
  type ScsiCommand,
  type ScsiResponse,
  type TargetCore,
  type TmfRequest,
  type TmfResponse,
} from './port.js';
import { buildSense, SenseError, type ReasonName } from './sense.js';
import type { Task } from './task-set.js';
import { taskManagement } from './tmf.js';

export interface TargetCoreOptions {
  log?: Logger;
  /** The opcode table; defaults to every SPC/SBC command this core implements. */
  table?: OpcodeTable;
}

const ABORTED: ScsiResponse = Object.freeze({ status: ScsiStatus.TASK_ABORTED, aborted: true }) as ScsiResponse;

export function checkCondition(reason: ReasonName, detail?: SenseError['detail']): ScsiResponse {
  return { status: ScsiStatus.CHECK_CONDITION, sense: buildSense(reason, detail) };
}

/** The one place backstore failures become sense (gotgt model). */
function backstoreReason(err: BackstoreError, entry: OpcodeEntry | undefined): ReasonName {
  switch (err.code) {
    case BackstoreErrorCode.NOT_READY:
      return 'NOT_READY_ALUA_TRANSITION'; // retryable "in transition": initiators retry after a delay
    case BackstoreErrorCode.NO_SPACE:
      return 'SPACE_ALLOCATION_FAILED';
    case BackstoreErrorCode.RANGE:
      return 'LBA_OUT_OF_RANGE';
    case BackstoreErrorCode.CLOSED:
      return 'NOT_READY_CAUSE_NOT_REPORTABLE';
    case BackstoreErrorCode.WRITE_PROTECTED:
      return 'WRITE_PROTECTED'; // DATA PROTECT 07/27/00: not retryable, initiators fail the write and keep reading
    case BackstoreErrorCode.IO:
    default:
      return entry?.dir === DataDirection.OUT ? 'WRITE_ERROR' : 'MEDIUM_ERROR';
  }
}

export class Core implements TargetCore {
  readonly table: OpcodeTable;
  private readonly log: Logger;
  /** LUs each nexus has reached (for nexusLost). */
  private readonly nexusLus = new Map<string, Set<LogicalUnit>>();

  constructor(opts: TargetCoreOptions = {}) {
    this.log = opts.log ?? silentLogger;
    this.table = opts.table ?? defaultOpcodeTable();
  }

  execute(cmd: ScsiCommand): Promise<ScsiResponse> {
    const mapping = cmd.luns.get(cmd.lun);
    if (!mapping) return this.withoutLun(cmd);
    const lu = mapping.lu as LogicalUnit;
    if (lu.ua.know(cmd.nexus.id)) this.attach(cmd.nexus, mapping);
    const task = lu.tasks.begin(cmd.nexus.id, cmd.tag, cmd.attr);
    // One promise settled by whichever comes first: the command's end or an abort (run never rejects).
    return new Promise<ScsiResponse>((resolve) => {
      task.abortWith = resolve;
      const settled = cmd.settled;
      const done = this.run(cmd, mapping, lu, task).then(resolve);
      if (settled) void done.finally(settled);
    });
  }

  private async run(cmd: ScsiCommand, mapping: LunMapping, lu: LogicalUnit, task: Task): Promise<ScsiResponse> {
    let entry: OpcodeEntry | undefined;
    try {
      const wait = lu.tasks.turn(task);
      if (wait) await wait;
      if (task.aborted) return ABORTED;
      const nexus = cmd.nexus;
      const cdb = cmd.cdb;
      let lookupError: unknown;
      try {
        entry = this.table.lookup(cdb);
      } catch (err) {
        lookupError = err;
      }
      if (!entry?.skipUa && lu.ua.has(nexus.id)) return checkCondition(lu.ua.take(nexus.id)!);
      if (!entry) throw lookupError;
      const refusal = aluaRefusal(lu.alua.groupOf(mapping).state, entry.alua);
      if (refusal) return checkCondition(refusal);
      if (lu.reservations.conflicts(nexus, entry, cdb)) return { status: ScsiStatus.RESERVATION_CONFLICT };
      checkCdbUsage(cdb, entry);
      const ctx: CommandContext = { cmd, cdb, nexus, mapping, lu, entry, table: this.table };
      const r = await entry.handler(ctx);
      // A result that already names its status is a complete response (READ's is): no copy per command.
      if (r.status !== undefined) return r as ScsiResponse;
      return { status: ScsiStatus.GOOD, data: r.data, dataOutLength: r.dataOutLength };
    } catch (err) {
      return this.failure(err, entry, cmd);
    } finally {
      lu.tasks.end(task);
    }
  }

  private async withoutLun(cmd: ScsiCommand): Promise<ScsiResponse> {
    let entry: OpcodeEntry | undefined;
    try {
      entry = this.table.lookup(cmd.cdb);
      if (!entry.noLun) return checkCondition('LUN_NOT_SUPPORTED');
      checkCdbUsage(cmd.cdb, entry);
      const r = await entry.noLun(cmd, entry);
      return { status: r.status ?? ScsiStatus.GOOD, data: r.data, dataOutLength: r.dataOutLength };
    } catch (err) {
      if (!entry?.noLun) return checkCondition('LUN_NOT_SUPPORTED');
      return this.failure(err, entry, cmd);
    }
  }

  private failure(err: unknown, entry: OpcodeEntry | undefined, cmd: ScsiCommand): ScsiResponse {
    if (err instanceof SenseError) return checkCondition(err.reason, err.detail);
    if (err instanceof BackstoreError) {
      this.log.warn({ lun: cmd.lun, op: entry?.name, code: err.code, err: err.message }, 'backstore error');
      return checkCondition(backstoreReason(err, entry));
    }
    this.log.error({ lun: cmd.lun, op: entry?.name, err }, 'internal error executing command');
    return checkCondition('INTERNAL_TARGET_FAILURE');
  }

  private attach(nexus: Nexus, mapping: LunMapping): void {
    const lu = mapping.lu as LogicalUnit;
    lu.ua.know(nexus.id);
    lu.attach(nexus, mapping);
    let s = this.nexusLus.get(nexus.id);
    if (!s) this.nexusLus.set(nexus.id, (s = new Set()));
    s.add(lu);
  }

  dataOutLength(cmd: Pick<ScsiCommand, 'luns' | 'lun' | 'cdb'>): number | undefined {
    const mapping = cmd.luns.get(cmd.lun);
    if (!mapping) return undefined;
    let entry: OpcodeEntry;
    try {
      entry = this.table.lookup(cmd.cdb);
    } catch {
      return undefined;
    }
    if (!entry.dataOutBlocks) return undefined;
    const lu = mapping.lu as LogicalUnit;
    const n = entry.dataOutBlocks(cmd.cdb);
    // Beyond the transfer limit the command fails on its CDB before it looks at any data.
    return n > lu.limits.maxTransferBlocks ? 0 : n * lu.blockSize;
  }

  taskManagement(req: TmfRequest): Promise<TmfResponse> {
    return Promise.resolve(taskManagement(req, this.log));
  }

  nexusCreated(nexus: Nexus, luns: LunView): void {
    for (const m of luns.list()) {
      const lu = m.lu as LogicalUnit;
      this.attach(nexus, m);
      lu.ua.establish(nexus.id, 'POWER_ON_RESET');
    }
  }

  nexusLost(nexus: Nexus): void {
    const lus = this.nexusLus.get(nexus.id);
    if (!lus) return;
    this.nexusLus.delete(nexus.id);
    for (const lu of lus) {
      for (const t of lu.tasks.select((t) => t.nexusId === nexus.id)) {
        t.aborted = true;
        t.abortWith?.(ABORTED);
      }
      lu.reservations.nexusLost(nexus.id);
    }
  }
}

export function createTargetCore(opts?: TargetCoreOptions): Core {
  return new Core(opts);
}

export { ABORTED as ABORTED_RESPONSE };
