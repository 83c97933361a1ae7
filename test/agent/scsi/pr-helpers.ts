// Test helpers for the SCSI core's reservation and copy suites: nexuses, LUN views and CDB builders.
import { createTargetCore, type Core } from '../../../agent/scsi/core.js';
import type { LogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { TaskAttribute, type LunMapping, type LunView, type Nexus, type ScsiResponse } from '../../../agent/scsi/port.js';

export const TARGET = 'iqn.2026-01.test:target';

export function nexus(initiatorName: string, isid = '400001370000', tpgt = 1): Nexus {
  const initiatorPortName = `${initiatorName},i,0x${isid}`;
  const targetPortName = `${TARGET},t,0x${tpgt.toString(16).padStart(4, '0')}`;
  return { id: `${initiatorPortName}|${targetPortName}`, initiatorName, isid, initiatorPortName, targetName: TARGET, tpgt, targetPortName, relativeTargetPortId: tpgt };
}

export function view(lus: LogicalUnit[], writeProtect = false): LunView {
  const maps: LunMapping[] = lus.map((lu, i) => ({ lun: i, lu, writeProtect, aluaGroup: 'default_tg_pt_gp' }));
  return { get: (n) => maps.find((m) => m.lun === n), list: () => maps };
}

let tag = 1;

/** One initiator port talking to the core: sends CDBs, clears the power-on unit attention first. */
export class Initiator {
  constructor(
    readonly core: Core,
    readonly nx: Nexus,
    readonly luns: LunView,
  ) {
    core.nexusCreated(nx, luns);
  }

  send(cdb: Buffer, dataOut?: Buffer, lun = 0, expectedIn = 65536): Promise<ScsiResponse> {
    const padded = Buffer.alloc(Math.max(16, cdb.length));
    cdb.copy(padded);
    return this.core.execute({
      nexus: this.nx,
      luns: this.luns,
      lun,
      cdb: padded,
      tag: tag++,
      attr: TaskAttribute.SIMPLE,
      expectedInLength: dataOut ? 0 : expectedIn,
      expectedOutLength: dataOut?.length ?? 0,
      dataOut: dataOut ? [dataOut] : [],
    });
  }

  /** TEST UNIT READY until GOOD; returns the unit attentions seen as "KEY/ASCQ" hex strings. */
  async clearUa(lun = 0): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await this.send(Buffer.from([0, 0, 0, 0, 0, 0]), undefined, lun);
      if (r.status === 0) return seen;
      seen.push(senseOf(r));
    }
    throw new Error('unit attentions never cleared');
  }
}

/** "key/asc-ascq" of a CHECK CONDITION response, e.g. "6/2a03". */
export function senseOf(r: ScsiResponse): string {
  if (!r.sense) return `status ${r.status}`;
  return `${r.sense[2].toString(16)}/${((r.sense[12] << 8) | r.sense[13]).toString(16).padStart(4, '0')}`;
}

export function core(): Core {
  return createTargetCore();
}

export function prin(sa: number, alloc = 8192): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 0x5e;
  b[1] = sa;
  b.writeUInt16BE(alloc, 7);
  return b;
}

export function prout(sa: number, type: number, key: bigint, saKey: bigint, flags = 0, len = 24): [Buffer, Buffer] {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5f;
  cdb[1] = sa;
  cdb[2] = type;
  cdb.writeUInt32BE(len, 5);
  const p = Buffer.alloc(Math.max(len, 24));
  p.writeBigUInt64BE(key, 0);
  p.writeBigUInt64BE(saKey, 8);
  p[20] = flags;
  return [cdb, p.subarray(0, len)];
}

export const read10 = (lba: number, n: number) => Buffer.from([0x28, 0, 0, 0, lba >> 8, lba & 0xff, 0, 0, n, 0]);
export const write10 = (lba: number, n: number) => Buffer.from([0x2a, 0, 0, 0, lba >> 8, lba & 0xff, 0, 0, n, 0]);
