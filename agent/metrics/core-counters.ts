// Per-LUN I/O metrics at the one place SCSI commands complete: a TargetCore decorator the composition root
// puts between the fabric and the core, so neither layer imports metrics (DESIGN "Layers").
import { ReservationClass, type OpcodeTable } from '../scsi/opcodes.js';
import { ScsiStatus, type ScsiCommand, type ScsiResponse, type TargetCore } from '../scsi/port.js';
import { SenseKey } from '../scsi/sense.js';

export type IoOp = 'read' | 'write' | 'other';

/** What the decorator records into; AgentMetrics implements it with prom-client. */
export interface LunCounters {
  /** One completed command on logical unit `lun` (its backstore path). */
  completed(lun: string, op: IoOp, bytes: number, seconds: number): void;
  /** A CHECK CONDITION, by sense key name (ILLEGAL_REQUEST, MEDIUM_ERROR…). */
  checkCondition(lun: string, senseKey: string): void;
}

const SENSE_KEY_NAMES = new Map<number, string>(Object.entries(SenseKey).map(([k, v]) => [v as number, k]));

/** Fixed-format sense (SPC-4 §4.5.3): the key is the low nibble of byte 2. */
export function senseKeyName(sense: Buffer | undefined): string {
  if (!sense || sense.length < 3) return 'UNKNOWN';
  return SENSE_KEY_NAMES.get(sense[2]! & 0x0f) ?? `0x${(sense[2]! & 0x0f).toString(16)}`;
}

/** Medium reads and writes by the opcode table's reservation class (READ/WRITE …, VERIFY, UNMAP, WRITE SAME). */
function classify(table: OpcodeTable | undefined, cdb: Buffer): IoOp {
  if (!table) return 'other';
  try {
    const r = table.lookup(cdb).reservation;
    return r === ReservationClass.READ ? 'read' : r === ReservationClass.WRITE ? 'write' : 'other';
  } catch {
    return 'other'; // an unknown opcode: the core answers it with CHECK CONDITION
  }
}

function dataOutBytes(cmd: ScsiCommand): number {
  let n = 0;
  for (const b of cmd.dataOut) n += b.length;
  return n;
}

/** Wraps `core` so that every command on a mapped LUN is counted when it completes. */
export function countingCore(core: TargetCore & { table?: OpcodeTable }, counters: LunCounters): TargetCore {
  const table = core.table;
  return {
    async execute(cmd: ScsiCommand): Promise<ScsiResponse> {
      const lu = cmd.luns.get(cmd.lun)?.lu;
      if (!lu) return core.execute(cmd);
      const t0 = performance.now();
      const r = await core.execute(cmd);
      if (r.aborted) return r;
      const op = classify(table, cmd.cdb);
      let bytes = 0;
      if (r.status === ScsiStatus.GOOD) bytes = op === 'read' ? Math.min(r.data?.length ?? 0, cmd.expectedInLength) : op === 'write' ? dataOutBytes(cmd) : 0;
      counters.completed(lu.name, op, bytes, (performance.now() - t0) / 1000);
      if (r.status === ScsiStatus.CHECK_CONDITION) counters.checkCondition(lu.name, senseKeyName(r.sense));
      return r;
    },
    // The fabric solicits no more Data-Out than this (declared-length bounds): dropping it would make every
    // write with an oversized Expected Data Transfer Length a TASK SET FULL.
    ...(core.dataOutLength ? { dataOutLength: (cmd: Pick<ScsiCommand, 'luns' | 'lun' | 'cdb'>) => core.dataOutLength!(cmd) } : {}),
    taskManagement: (req) => core.taskManagement(req),
    nexusCreated: (nexus, luns) => core.nexusCreated(nexus, luns),
    nexusLost: (nexus) => core.nexusLost(nexus),
  };
}
