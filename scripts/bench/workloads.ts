// The benchmark rows as data: each workload names a LUN kind, digest use, tool, I/O size and queue depth.
import type { LunKind } from './target.js';

export type Tool = 'iscsi-perf' | 'qemu-bench';

export interface Workload {
  id: string;
  label: string;
  lun: LunKind;
  /** Run against the targets that require CRC32C header (and data) digests. */
  digest: boolean;
  tool: Tool;
  ioBytes: number;
  depth: number;
  random: boolean;
  /** iscsi-perf only reads; qemu-img bench is used for writes. */
  write: boolean;
  unit: 'IOPS' | 'MiB/s';
}

const KiB = 1024;

/** The four shapes issue 8 names; every variant below repeats them on another LUN kind or with digests. */
const SHAPES = [
  { id: 'rr4k', label: '4 KiB random read QD32', tool: 'iscsi-perf', ioBytes: 4 * KiB, depth: 32, random: true, write: false, unit: 'IOPS' },
  { id: 'sr128k', label: '128 KiB sequential read QD32', tool: 'iscsi-perf', ioBytes: 128 * KiB, depth: 32, random: false, write: false, unit: 'MiB/s' },
  { id: 'rw4k', label: '4 KiB random write QD32', tool: 'qemu-bench', ioBytes: 4 * KiB, depth: 32, random: true, write: true, unit: 'IOPS' },
  { id: 'sw128k', label: '128 KiB sequential write QD16', tool: 'qemu-bench', ioBytes: 128 * KiB, depth: 16, random: false, write: true, unit: 'MiB/s' },
] as const satisfies readonly Omit<Workload, 'lun' | 'digest'>[];

/**
 * Variants: a LUN kind and digest setting, plus an id suffix and label prefix. To add a row family
 * (e.g. an object-storage LUN), add a LunKind, one line here, and the endpoint in each target.
 * Ramdisk writes come before ramdisk reads so the reads hit written memory, not never-touched pages.
 */
const VARIANTS: readonly { suffix: string; prefix: string; lun: LunKind; digest: boolean; order?: readonly string[] }[] = [
  { suffix: '', prefix: 'file', lun: 'file', digest: false },
  { suffix: '-rhel', prefix: 'file, RHEL TPG defaults', lun: 'file-rhel', digest: false },
  { suffix: '-digest', prefix: 'file, CRC32C digests', lun: 'file', digest: true },
  { suffix: '-ram', prefix: 'ramdisk', lun: 'ram', digest: false, order: ['rw4k', 'sw128k', 'rr4k', 'sr128k'] },
];

export const WORKLOADS: readonly Workload[] = VARIANTS.flatMap((v) => {
  const shapes = v.order ? v.order.map((id) => SHAPES.find((s) => s.id === id)!) : SHAPES;
  return shapes.map((s) => ({ ...s, id: s.id + v.suffix, label: `${v.prefix}: ${s.label}`, lun: v.lun, digest: v.digest }));
});

/**
 * The main four (file LUN, no digests) with the agent's defaults and again with the RHEL TPG defaults:
 * the rows whose ratios issues 8 and 15 require to be ≥ 1.0.
 */
export const MAIN_IDS = [...SHAPES.map((s) => s.id), ...SHAPES.map((s) => `${s.id}-rhel`)];

/**
 * Selects workloads by comma-separated patterns: an exact id, a prefix ending in '*', or a
 * group name ('main', 'rhel', 'digest', 'ram'). Unknown patterns are an error, so a typo never silently runs nothing.
 */
export function selectWorkloads(spec: string | undefined, all: readonly Workload[] = WORKLOADS): Workload[] {
  if (!spec) return [...all];
  const picked = new Set<Workload>();
  for (const raw of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    let match: Workload[];
    if (raw === 'main') match = all.filter((w) => !w.digest && (w.lun === 'file' || w.lun === 'file-rhel'));
    else if (raw === 'rhel') match = all.filter((w) => w.lun === 'file-rhel');
    else if (raw === 'digest') match = all.filter((w) => w.digest);
    else if (raw === 'ram') match = all.filter((w) => w.lun === 'ram');
    else if (raw.endsWith('*')) match = all.filter((w) => w.id.startsWith(raw.slice(0, -1)));
    else match = all.filter((w) => w.id === raw);
    if (match.length === 0) throw new Error(`no workload matches "${raw}" (ids: ${all.map((w) => w.id).join(', ')}; groups: main, rhel, digest, ram)`);
    for (const w of match) picked.add(w);
  }
  return all.filter((w) => picked.has(w));
}
