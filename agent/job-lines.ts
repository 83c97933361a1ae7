// How a job of agent/jobs.ts reads to people: one progress line ("flush vol1: 42% 118 MB/s ETA 12s") for the
// shell's plain output and the agent's log, and the `jobs` table. Plain functions of a JobSnapshot.
import type { JobSnapshot, JobUnit } from './jobs.js';

/** "flush vol1": the kind and the last segment of the subject. */
export function jobName(s: JobSnapshot): string {
  const leaf = s.subject.split('/').filter(Boolean).pop() ?? s.subject;
  return `${s.kind} ${leaf}`;
}

export function jobPercent(s: JobSnapshot): number | null {
  if (s.state === 'done') return 100;
  return s.total > 0 ? Math.min(100, Math.floor((s.done / s.total) * 100)) : null;
}

/** Decimal units, as rates are usually read (MB/s). */
export function amount(n: number, unit: JobUnit): string {
  if (unit !== 'bytes') return `${Math.round(n)} ${unit}`;
  const steps = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < steps.length - 1) [n, i] = [n / 1000, i + 1];
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${steps[i]}`;
}

export function rateText(s: JobSnapshot): string {
  return `${amount(s.rate, s.unit)}/s`;
}

export function duration(sec: number): string {
  const t = Math.max(0, Math.round(sec));
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

export function etaText(s: JobSnapshot): string {
  return s.eta_s === null ? '?' : duration(s.eta_s);
}

function elapsed(s: JobSnapshot): number {
  return ((s.ended ? Date.parse(s.ended) : Date.now()) - Date.parse(s.started)) / 1000;
}

/** One line: running "flush vol1: 42% 118 MB/s ETA 12s"; ended "flush vol1: 100% done, 1.2 GB in 9s". */
export function progressLine(s: JobSnapshot): string {
  const pct = jobPercent(s);
  const head = `${jobName(s)}: ${pct === null ? amount(s.done, s.unit) : `${pct}%`}`;
  const phase = s.phase ? ` (${s.phase})` : '';
  switch (s.state) {
    case 'running':
      return `${head} ${rateText(s)} ETA ${etaText(s)}${phase}`;
    case 'done':
      return `${head} done, ${amount(s.done, s.unit)} in ${duration(elapsed(s))}`;
    case 'failed':
      return `${head} failed after ${duration(elapsed(s))}: ${s.error ?? 'unknown error'}`;
    default:
      return `${head} ${s.state} after ${duration(elapsed(s))}`;
  }
}

/** The `jobs` command's table: running jobs first, then the recent ones. */
export function jobsTable(list: readonly JobSnapshot[]): string[] {
  if (list.length === 0) return ['(no jobs)'];
  const rows = list.map((s) => {
    const pct = jobPercent(s);
    return [String(s.id), s.kind, s.subject, s.state, pct === null ? '-' : `${pct}%`,
      `${amount(s.done, s.unit)}${s.total ? ` / ${amount(s.total, s.unit)}` : ''}`,
      s.state === 'running' ? rateText(s) : '-', s.state === 'running' ? etaText(s) : '-', s.error ?? (s.state === 'running' ? s.phase ?? '' : '')];
  });
  const head = ['ID', 'KIND', 'SUBJECT', 'STATE', 'PCT', 'DONE', 'RATE', 'ETA', 'NOTE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
