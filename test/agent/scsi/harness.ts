// Builds ScsiCommands by hand against a real core and real backstores in a temp dir (no fabric).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { openBackstore } from '../../../agent/backstores/index.js';
import { createTargetCore, type Core } from '../../../agent/scsi/core.js';
import { createLogicalUnit, type LogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { TaskAttribute, type AluaGroupConfig, type LunMapping, type LunView, type Nexus, type ScsiCommand, type ScsiResponse } from '../../../agent/scsi/port.js';

export function nexus(n = 1, port = 1): Nexus {
  const initiatorName = `iqn.2024-01.test:init${n}`;
  const isid = `40000000000${n}`;
  const targetName = 'iqn.2024-01.test:target';
  const initiatorPortName = `${initiatorName},i,0x${isid}`;
  const targetPortName = `${targetName},t,0x0001`;
  return { id: `${initiatorPortName}|${targetPortName}|${port}`, initiatorName, isid, initiatorPortName, targetName, tpgt: 1, targetPortName, relativeTargetPortId: port };
}

export class Luns implements LunView {
  constructor(public maps: LunMapping[]) {}
  get(lun: number) {
    return this.maps.find((m) => m.lun === lun);
  }
  list() {
    return this.maps;
  }
}

export interface Rig {
  core: Core;
  lu: LogicalUnit;
  luns: Luns;
  dir: string;
  /** Runs a CDB (hex or bytes) on LUN 0 from `nx`. */
  run(cdb: string | Buffer, opts?: { data?: Buffer[]; nx?: Nexus; lun?: number; tag?: number; attr?: TaskAttribute; inLen?: number }): Promise<ScsiResponse>;
  close(): Promise<void>;
}

let tagSeq = 1;

export function cdbOf(hex: string | Buffer): Buffer {
  const b = Buffer.alloc(16);
  (typeof hex === 'string' ? Buffer.from(hex.replace(/\s+/g, ''), 'hex') : hex).copy(b);
  return b;
}

export async function rig(
  opts: { plugin?: 'fileio' | 'rd_mcp'; size?: number; writeProtect?: boolean; attributes?: Record<string, number | string | boolean>; aluaGroups?: AluaGroupConfig[]; backstore?: Backstore; aluaGroup?: string } = {},
): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-scsi-'));
  const size = opts.size ?? 4 << 20;
  const bs =
    opts.backstore ??
    (opts.plugin === 'fileio'
      ? await openBackstore({ plugin: 'fileio', name: 'f', dev: join(dir, 'f.img'), size, writeBack: true }, { stateDir: dir })
      : await openBackstore({ plugin: 'rd_mcp', name: 'r', size }, { stateDir: dir }));
  const lu = await createLogicalUnit({ name: 'lu', wwn: '01234567-89ab-cdef-0123-456789abcdef', backstore: bs, attributes: opts.attributes ?? {}, aluaGroups: opts.aluaGroups ?? [], stateDir: dir });
  const luns = new Luns([{ lun: 0, lu, writeProtect: opts.writeProtect ?? false, aluaGroup: opts.aluaGroup ?? 'default_tg_pt_gp' }]);
  const core = createTargetCore();
  return {
    core,
    lu,
    luns,
    dir,
    run(cdb, o = {}) {
      const data = o.data ?? [];
      const cmd: ScsiCommand = {
        nexus: o.nx ?? nexus(1),
        luns,
        lun: o.lun ?? 0,
        cdb: cdbOf(cdb),
        tag: o.tag ?? tagSeq++,
        attr: o.attr ?? TaskAttribute.SIMPLE,
        expectedInLength: o.inLen ?? 65536,
        expectedOutLength: data.reduce((n, b) => n + b.length, 0),
        dataOut: data,
      };
      return core.execute(cmd);
    },
    async close() {
      await lu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** [key, asc<<8|ascq] of a CHECK CONDITION response's fixed-format sense. */
export function senseOf(r: ScsiResponse): [number, number] | undefined {
  if (!r.sense) return undefined;
  return [r.sense[2] & 0x0f, (r.sense[12] << 8) | r.sense[13]];
}

/** Clears the power-on UA that nexusCreated sets. */
export async function clearUa(r: Rig, nx = nexus(1)): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const res = await r.run('00', { nx });
    if (res.status === 0) return;
  }
}
