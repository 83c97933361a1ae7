// Live backstore figures for `info` (issue 6 observability): Backstore.stats() rendered for people.
import { bytesToHuman } from '../config/size.js';

type Stats = Record<string, number | string | null>;

const BYTES = new Set(['size', 'cache_size', 'cached_bytes', 'dirty_bytes', 'bytes_uploaded', 'bytes_downloaded']);

/** Labels in display order; keys not listed follow in their own order. */
const LABELS: ReadonlyArray<readonly [string, string]> = [
  ['size', 'size'],
  ['cache_size', 'cache size'],
  ['cached_bytes', 'cached bytes'],
  ['dirty_bytes', 'dirty bytes'],
  ['oldest_dirty_age_ms', 'oldest dirty age (RPO)'],
  ['hit_ratio', 'hit ratio'],
  ['uploads_in_flight', 'uploads in flight'],
  ['bytes_uploaded', 'bytes uploaded'],
  ['bytes_downloaded', 'bytes downloaded'],
  ['put_count', 'PUT count'],
  ['get_count', 'GET count'],
  ['delete_count', 'DELETE count'],
  ['manifest_generation', 'manifest generation'],
  ['chunks_stored', 'chunks stored'],
  ['last_error', 'last error'],
];

function value(key: string, v: number | string | null): string {
  if (v === null) return 'none';
  if (typeof v === 'string') return v;
  if (BYTES.has(key)) return `${bytesToHuman(v)} (${v})`;
  if (key === 'hit_ratio') return `${(v * 100).toFixed(1)}%`;
  if (key.endsWith('_ms')) return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
  return String(v);
}

/** "live:" followed by one "  label: value" line per figure. */
export function renderLiveStats(stats: Stats): string[] {
  const known = new Set(LABELS.map(([k]) => k));
  const rows: Array<[string, string]> = [];
  for (const [k, label] of LABELS) if (k in stats) rows.push([label, value(k, stats[k]!)]);
  for (const k of Object.keys(stats)) if (!known.has(k)) rows.push([k.replace(/_/g, ' '), value(k, stats[k]!)]);
  return ['live:', ...rows.map(([l, v]) => `  ${l}: ${v}`)];
}
