// SAM-5 §4.6.20 logical unit: the backstore plus per-LU state (unit attentions, ALUA, reservations, task set).
import type { Backstore } from '../backstores/backstore.js';
import type { LogicalUnitHandle, LogicalUnitOptions, LunMapping, Nexus } from './port.js';
import { AluaGroups } from './alua.js';
import { installPersistentReservations } from './pr/policy.js';
import { RangeLock } from './range-lock.js';
import { Reservations } from './reservations.js';
import { SenseError } from './sense.js';
import { TaskSet } from './task-set.js';
import { UnitAttentions } from './unit-attention.js';

const PRODUCT_BY_PLUGIN: Record<string, string> = { fileio: 'FILEIO', block: 'IBLOCK', rd_mcp: 'RAMDISK', object: 'OBJECT' };
export const REVISION = '0001';

type Attrs = Readonly<Record<string, number | string | boolean>>;

function num(a: Attrs, key: string, dflt: number): number {
  const v = a[key];
  if (v === undefined || v === '') return dflt;
  const n = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
  return Number.isFinite(n) ? n : dflt;
}
function flag(a: Attrs, key: string, dflt: boolean): boolean {
  const v = a[key];
  if (v === undefined || v === '') return dflt;
  return v === true || v === 1 || v === '1' || v === 'true' || v === 'yes';
}

/** Limits and emulation switches derived once from saveconfig attributes (LIO names). */
export interface LuLimits {
  readonly maxTransferBlocks: number;
  readonly optimalTransferBlocks: number;
  readonly unmap: boolean; // emulate_tpu
  readonly writeSameUnmap: boolean; // emulate_tpws
  readonly maxUnmapLbaCount: number;
  readonly maxUnmapDescriptors: number;
  readonly unmapGranularity: number;
  readonly unmapGranularityAlignment: number;
  readonly maxWriteSameBlocks: number;
  readonly maxCompareAndWriteBlocks: number;
  readonly nonRotational: boolean;
  readonly tas: boolean;
  readonly fuaWrite: boolean;
  readonly threePc: boolean;
}

export class LogicalUnit implements LogicalUnitHandle {
  readonly name: string;
  readonly wwn: string;
  readonly backstore: Backstore;
  readonly attributes: Attrs;
  readonly stateDir: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision = REVISION;
  readonly blockSize: number;
  readonly blockShift: number;
  readonly blocks: number;
  readonly limits: LuLimits;
  readonly readOnly: boolean;
  /**
   * log2(logical blocks per physical block), READ CAPACITY(16). 0 unless the `physical_block_exponent`
   * attribute says otherwise: with 4 KiB physical blocks GET LBA STATUS would have to report per-block
   * allocation, which the backstore contract cannot tell.
   */
  readonly physicalBlockExponent: number;

  readonly ua = new UnitAttentions();
  readonly alua: AluaGroups;
  readonly reservations = new Reservations();
  readonly tasks = new TaskSet();
  readonly rangeLock = new RangeLock();
  /** Mode parameters the initiator can change (SPC-4 §7.5); everything else is fixed. */
  readonly mode = { dSense: false };
  private closed = false;

  constructor(o: LogicalUnitOptions) {
    this.name = o.name;
    this.wwn = o.wwn;
    this.backstore = o.backstore;
    this.attributes = o.attributes;
    this.stateDir = o.stateDir;
    this.vendor = o.vendor ?? 'OUTPOST';
    this.product = o.product ?? PRODUCT_BY_PLUGIN[o.backstore.plugin] ?? o.backstore.plugin.toUpperCase();
    const bs = num(o.attributes, 'block_size', 512);
    if (![512, 1024, 2048, 4096].includes(bs)) throw new Error(`${o.name}: unsupported block_size ${bs}`);
    this.blockSize = bs;
    this.blockShift = 31 - Math.clz32(bs);
    this.blocks = Math.floor(o.backstore.size / bs);
    this.physicalBlockExponent = Math.max(0, Math.min(15, num(o.attributes, 'physical_block_exponent', 0)));
    if (this.blocks < 1) throw new Error(`${o.name}: backstore smaller than one block`);
    this.readOnly = (o.backstore as { readOnly?: boolean }).readOnly === true || flag(o.attributes, 'readonly', false);
    const thin = o.backstore.thinProvisioned;
    const maxSectors = num(o.attributes, 'hw_max_sectors', num(o.attributes, 'max_sectors', 16384));
    this.limits = {
      maxTransferBlocks: Math.max(1, Math.min(maxSectors, 0xffffffff)),
      optimalTransferBlocks: Math.max(1, num(o.attributes, 'optimal_sectors', Math.min(maxSectors, 2048))),
      unmap: flag(o.attributes, 'emulate_tpu', thin),
      writeSameUnmap: flag(o.attributes, 'emulate_tpws', thin),
      maxUnmapLbaCount: num(o.attributes, 'max_unmap_lba_count', 1024 * 1024),
      maxUnmapDescriptors: num(o.attributes, 'max_unmap_block_desc_count', 128),
      unmapGranularity: Math.max(1, num(o.attributes, 'unmap_granularity', 1)),
      unmapGranularityAlignment: num(o.attributes, 'unmap_granularity_alignment', 0),
      maxWriteSameBlocks: num(o.attributes, 'max_write_same_len', 65535),
      maxCompareAndWriteBlocks: 16,
      nonRotational: flag(o.attributes, 'is_nonrot', o.backstore.plugin === 'rd_mcp'),
      tas: flag(o.attributes, 'emulate_tas', true),
      fuaWrite: flag(o.attributes, 'emulate_fua_write', true),
      threePc: flag(o.attributes, 'emulate_3pc', true),
    };
    this.alua = new AluaGroups(o.aluaGroups);
  }

  /** Last addressable LBA (READ CAPACITY). */
  get lastLba(): number {
    return this.blocks - 1;
  }

  /** LBA range check shared by every medium-access command (SBC-4 §4.5). */
  checkRange(lba: number, count: number): void {
    if (lba + count > this.blocks || lba > this.blocks) throw new SenseError('LBA_OUT_OF_RANGE');
  }

  /** A nexus reached this LU through `mapping` (login or first command). */
  attach(nexus: Nexus, mapping: LunMapping): void {
    this.alua.addPort(mapping, nexus.relativeTargetPortId);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backstore.close();
  }
}

export async function createLogicalUnit(opts: LogicalUnitOptions): Promise<LogicalUnit> {
  const lu = new LogicalUnit(opts);
  await installPersistentReservations(lu); // reloads APTPL state from opts.stateDir
  return lu;
}
