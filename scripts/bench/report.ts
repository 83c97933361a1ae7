// Turns measured samples into the Markdown report (printed to stdout, optionally spliced into docs/benchmarks.md).
import type { Workload } from './workloads.js';

export interface Cell {
  /** Median over successful runs, in the workload's unit; undefined when no run succeeded. */
  value?: number;
  /** Lowest and highest run (spread), same unit; set when more than one run succeeded. */
  min?: number;
  max?: number;
  cpuPerGiB?: number;
  cpuMin?: number;
  cpuMax?: number;
  runs: number;
  failures: string[];
  /** Why the cell could not be measured at all. */
  na?: string;
  /** Each repetition's value and CPU s/GiB in run order (undefined: that run failed), to pair with the other target's. */
  perRun?: (number | undefined)[];
  cpuPerRun?: (number | undefined)[];
}

export interface RowResult {
  workload: Workload;
  agent: Cell;
  tgt: Cell;
  /** Facts about how the row ran (e.g. negotiated digests). */
  note?: string;
}

export interface MemoryResult {
  target: string;
  sessions: number;
  ok: number;
  totalIops: number;
  peakRssMiB?: number;
  hwmMiB?: number;
  na?: string;
  failures: string[];
}

export interface Report {
  date: string;
  machine: { cpu: string; cores: number; kernel: string; node: string; tools: string[] };
  settings: string;
  rows: RowResult[];
  ceilingMiBs?: number;
  ceilingNa?: string;
  memory: MemoryResult[];
  peakRss: { target: string; hwmMiB?: number }[];
  notes: string[];
  /** /proc/loadavg samples (start, between rows, end): tells a quiet machine from a busy one. */
  load?: string[];
}

/** Runs of one target on one row may differ by this factor before the report calls the row unsteady. */
export const SPREAD_LIMIT = 1.2;

/** A line for each target whose runs of this row differ by more than 20 % (max over min). */
export function spreadWarnings(row: RowResult): string[] {
  const out: string[] = [];
  for (const [name, c] of [['agent', row.agent], ['tgt', row.tgt]] as const) {
    if (c.min === undefined || c.max === undefined || !(c.min > 0)) continue;
    if (c.max / c.min > SPREAD_LIMIT) {
      const d = c.min < 10 ? 2 : 0;
      out.push(`${row.workload.label}: ${name} runs differ by ${(((c.max / c.min) - 1) * 100).toFixed(0)} % (${fmt(c.min, d)}–${fmt(c.max, d)} ${row.workload.unit})`);
    }
  }
  return out;
}

export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export function fmt(v: number | undefined, digits = 0): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return digits === 0 ? int.format(v) : v.toFixed(digits);
}

/** Collects long reasons as numbered footnotes so cells stay short; identical reasons share a number. */
class Footnotes {
  readonly list: string[] = [];
  ref(reason: string): string {
    const clean = reason.replace(/\|/g, '/').replace(/\s+/g, ' ').trim();
    if (clean.length <= 40) return clean;
    let i = this.list.indexOf(clean);
    if (i < 0) i = this.list.push(clean) - 1;
    return `note ${i + 1}`;
  }
}

function cellText(c: Cell, notes: Footnotes): string {
  if (c.value === undefined) return `n/a (${notes.ref(c.na ?? c.failures[0] ?? 'not run')})`;
  const digits = c.value < 10 ? 2 : 0;
  const failed = c.failures.length ? ` (${c.failures.length} of ${c.runs} runs failed: ${notes.ref(c.failures[0]!)})` : '';
  const spread = c.min !== undefined && c.max !== undefined ? ` (${fmt(c.min, digits)}–${fmt(c.max, digits)})` : '';
  return fmt(c.value, digits) + spread + failed;
}

function cpuText(c: Cell): string {
  const spread = c.cpuMin !== undefined && c.cpuMax !== undefined ? ` (${fmt(c.cpuMin, 2)}–${fmt(c.cpuMax, 2)})` : '';
  return fmt(c.cpuPerGiB, 2) + (c.cpuPerGiB === undefined ? '' : spread);
}

export function ratio(a: Cell, b: Cell): string {
  const spread = pairedSpread(a.perRun, b.perRun);
  return a.value !== undefined && b.value !== undefined && b.value > 0 ? (a.value / b.value).toFixed(2) + spread : '–';
}

/** Agent CPU s/GiB over tgt's: below 1 means the agent spends less CPU per byte (the shared-machine figure). */
export function cpuRatio(a: Cell, b: Cell): string {
  const spread = pairedSpread(a.cpuPerRun, b.cpuPerRun);
  return a.cpuPerGiB !== undefined && b.cpuPerGiB !== undefined && b.cpuPerGiB > 0 ? (a.cpuPerGiB / b.cpuPerGiB).toFixed(2) + spread : '–';
}

/**
 * " (lowest–highest)" of the per-repetition ratios, each agent run over the tgt run right after it (the
 * two alternate, so a pair saw about the same machine load); empty with fewer than two pairs.
 */
export function pairedSpread(a: readonly (number | undefined)[] | undefined, b: readonly (number | undefined)[] | undefined): string {
  if (!a || !b) return '';
  const rs: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i], y = b[i];
    if (x !== undefined && y !== undefined && y > 0) rs.push(x / y);
  }
  return rs.length > 1 ? ` (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})` : '';
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function renderMarkdown(r: Report): string {
  const notes = new Footnotes();
  const out: string[] = [];
  out.push(`Run ${r.date} on ${r.machine.cpu}, ${r.machine.cores} cores, Linux ${r.machine.kernel}, Node ${r.machine.node}.`);
  out.push(`Tools: ${r.machine.tools.join('; ')}.`);
  out.push(`Settings: ${r.settings}.`);
  out.push('');
  out.push(table(
    ['Workload', 'Unit', 'Agent', 'tgt', 'Agent/tgt', 'Agent CPU s/GiB', 'tgt CPU s/GiB', 'CPU agent/tgt'],
    r.rows.map((row) => [
      row.workload.label + (row.note ? ` (${notes.ref(row.note)})` : ''),
      row.workload.unit,
      cellText(row.agent, notes),
      cellText(row.tgt, notes),
      ratio(row.agent, row.tgt),
      cpuText(row.agent),
      cpuText(row.tgt),
      cpuRatio(row.agent, row.tgt),
    ]),
  ));
  out.push('');
  out.push('Cells: median over the runs, (lowest–highest run) when there was more than one. Ratios: of the medians, (lowest–highest) of each agent run over the tgt run that followed it.');
  const unsteady = r.rows.flatMap(spreadWarnings);
  if (unsteady.length) {
    out.push('');
    out.push(`Runs differing by more than ${((SPREAD_LIMIT - 1) * 100).toFixed(0)} % (treat these rows as noise):`);
    for (const u of unsteady) out.push(`- ${u}`);
  }
  if (r.load?.length) {
    out.push('');
    out.push(`Load average (1/5/15 min, uptime) during the run: ${r.load.join('; ')}.`);
  }
  out.push('');
  if (r.ceilingMiBs !== undefined) {
    out.push(`Ceiling: loopback TCP, one stream (iperf3): **${fmt(r.ceilingMiBs)} MiB/s**.`);
    const seq = r.rows.find((x) => x.workload.id === 'sr128k');
    if (seq) {
      const pct = (c: Cell) => (c.value === undefined ? 'n/a' : `${((c.value / r.ceilingMiBs!) * 100).toFixed(0)} %`);
      out.push(`128 KiB sequential read as a share of it: agent ${pct(seq.agent)}, tgt ${pct(seq.tgt)}.`);
    }
  } else if (r.ceilingNa) {
    out.push(`Ceiling: loopback TCP (iperf3): n/a (${notes.ref(r.ceilingNa)}).`);
  }
  if (r.memory.length) {
    out.push('');
    out.push(table(
      [`Memory check (${r.memory[0]!.sessions} sessions, 4 KiB random read QD32 each)`, 'Sessions OK', 'Total IOPS', 'Peak RSS during run (MiB)', 'VmHWM after (MiB)'],
      r.memory.map((m) => m.na
        ? [m.target, `n/a (${notes.ref(m.na)})`, '–', '–', '–']
        : [m.target, `${m.ok} / ${m.sessions}` + (m.failures.length ? ` (${notes.ref(m.failures[0]!)})` : ''), fmt(m.totalIops), fmt(m.peakRssMiB), fmt(m.hwmMiB)]),
    ));
  }
  if (r.peakRss.length) {
    out.push('');
    out.push(`Peak RSS over the whole run (VmHWM): ${r.peakRss.map((p) => `${p.target} ${p.hwmMiB === undefined ? 'n/a' : `${fmt(p.hwmMiB)} MiB`}`).join(', ')}.`);
  }
  const allNotes = [...r.notes];
  if (notes.list.length || allNotes.length) {
    out.push('');
    out.push('Notes:');
    notes.list.forEach((n, i) => out.push(`- note ${i + 1}: ${n}`));
    for (const n of allNotes) out.push(`- ${n}`);
  }
  return out.join('\n') + '\n';
}

export const BEGIN_MARK = '<!-- bench:begin (generated by npm run bench -- --markdown docs/benchmarks.md) -->';
export const END_MARK = '<!-- bench:end -->';

/** Replaces the generated section of an existing document, or returns a fresh one when it has no markers. */
export function spliceReport(existing: string | undefined, report: string): string {
  const block = `${BEGIN_MARK}\n${report}${END_MARK}`;
  if (existing) {
    const a = existing.indexOf(BEGIN_MARK);
    const b = existing.indexOf(END_MARK);
    if (a >= 0 && b > a) return existing.slice(0, a) + block + existing.slice(b + END_MARK.length);
  }
  return `# Benchmarks\n\n${block}\n`;
}
