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
/** The INQUIRY product identification a storage object of `plugin` reports unless its product_id says otherwise. */
export const inquiryProduct = (plugin: string): string => PRODUCT_BY_PLUGIN[plugin] ?? plugin.toUpperCase();

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

/**
 * Attributes fixed for the LU's lifetime (geometry and access mode, derived once in the constructor):
 * changing one needs a new LogicalUnit. Every other attribute can change on the running LU (updateAttributes).
 */
export const GEOMETRY_ATTRIBUTES: readonly string[] = ['block_size', 'physical_block_exponent', 'readonly'];

function deriveLimits(a: Attrs, backstore: Backstore): LuLimits {
  const thin = backstore.thinProvisioned;
  const maxSectors = num(a, 'hw_max_sectors', num(a, 'max_sectors', 16384));
  return {
    maxTransferBlocks: Math.max(1, Math.min(maxSectors, 0xffffffff)),
    optimalTransferBlocks: Math.max(1, num(a, 'optimal_sectors', Math.min(maxSectors, 2048))),
    unmap: flag(a, 'emulate_tpu', thin),
    writeSameUnmap: flag(a, 'emulate_tpws', thin),
    maxUnmapLbaCount: num(a, 'max_unmap_lba_count', 1024 * 1024),
    maxUnmapDescriptors: num(a, 'max_unmap_block_desc_count', 128),
    unmapGranularity: Math.max(1, num(a, 'unmap_granularity', 1)),
    unmapGranularityAlignment: num(a, 'unmap_granularity_alignment', 0),
    maxWriteSameBlocks: num(a, 'max_write_same_len', 65535),
    maxCompareAndWriteBlocks: 16,
    nonRotational: flag(a, 'is_nonrot', backstore.plugin === 'rd_mcp'),
    tas: flag(a, 'emulate_tas', true),
    fuaWrite: flag(a, 'emulate_fua_write', true),
    threePc: flag(a, 'emulate_3pc', true),
  };
}

export class LogicalUnit implements LogicalUnitHandle {
  readonly name: string;
  readonly wwn: string;
  readonly backstore: Backstore;
  /** Replaced (never mutated) by updateAttributes. */
  attributes: Attrs;
  readonly stateDir: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision = REVISION;
  readonly blockSize: number;
  readonly blockShift: number;
  readonly blocks: number;
  /** Replaced (never mutated) by updateAttributes. */
  limits: LuLimits;
  private readonly readOnlyAttr: boolean;
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
    this.product = o.product ?? inquiryProduct(o.backstore.plugin);
    const bs = num(o.attributes, 'block_size', 512);
    if (![512, 1024, 2048, 4096].includes(bs)) throw new Error(`${o.name}: unsupported block_size ${bs}`);
    this.blockSize = bs;
    this.blockShift = 31 - Math.clz32(bs);
    this.blocks = Math.floor(o.backstore.size / bs);
    this.physicalBlockExponent = Math.max(0, Math.min(15, num(o.attributes, 'physical_block_exponent', 0)));
    if (this.blocks < 1) throw new Error(`${o.name}: backstore smaller than one block`);
    this.readOnlyAttr = flag(o.attributes, 'readonly', false);
    this.limits = deriveLimits(o.attributes, o.backstore);
    this.alua = new AluaGroups(o.aluaGroups);
    // SPC-4 §7.5.4 / SBC-4 §6.5.2: the WP bit is mode data, so a change of it is MODE PARAMETERS CHANGED.
    o.backstore.onAccessChange?.(() => this.ua.establishOthers(undefined, 'MODE_PARAMETERS_CHANGED'));
  }

  /** Write-protected: the readonly attribute, or a store that refuses writes now (an object volume's reader). */
  get readOnly(): boolean {
    return this.readOnlyAttr || (this.backstore as { readOnly?: boolean }).readOnly === true;
  }

  /**
   * Applies changed attributes to the running LU, keeping its unit attentions, reservations and tasks.
   * Throws (changing nothing) when a GEOMETRY_ATTRIBUTES value differs: that needs a new LU. Reports
   * whether the mode pages (SPC-4 §7.5) or INQUIRY/VPD data changed, for the caller's unit attentions.
   */
  updateAttributes(attrs: Attrs): { modeChanged: boolean; inquiryChanged: boolean } {
    for (const k of GEOMETRY_ATTRIBUTES) {
      if (String(attrs[k] ?? '') !== String(this.attributes[k] ?? '')) throw new Error(`${this.name}: ${k} cannot change on a running logical unit`);
    }
    const limits = deriveLimits(attrs, this.backstore);
    const before = this.limits;
    this.attributes = attrs;
    this.limits = limits;
    const { tas, ...vpd } = limits;
    const { tas: tas0, ...vpd0 } = before;
    return { modeChanged: tas !== tas0, inquiryChanged: (Object.keys(vpd) as Array<keyof typeof vpd>).some((k) => vpd[k] !== vpd0[k]) };
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
